// The guard of the config being served. Keys, scopes and limits follow a reload (a key
// removed from the file is refused from the next request on); whether auth is on at all is
// decided at start, because the listeners' hooks are: a reload that adds or removes the
// `auth` section is reported as needing a restart, and until then the last auth section
// keeps applying (a reload never opens a guarded gateway).
import type { GatewayConfig } from '../config/load.ts'
import type { Gateway } from '../gateway.ts'
import type { TokenBucket } from './bucket.ts'
import { Guard } from './guard.ts'
import { KeySets } from './jwks.ts'
import { refusalsOf, type Refusals } from './refusals.ts'

export class Policy {
  private readonly gateway: Gateway
  /** The gateway's refusal counts, which each listener adds its refusals to. */
  readonly refusals: Refusals
  private readonly buckets = new Map<string, TokenBucket>()
  /** The issuer's key set, kept across reloads as the buckets are: a reload during an issuer outage keeps the last good keys. */
  private readonly keySets = new KeySets()
  private config: GatewayConfig
  private guard: Guard

  private constructor(gateway: Gateway) {
    this.gateway = gateway
    this.refusals = refusalsOf(gateway)
    this.config = gateway.config
    this.guard = this.build(gateway.config)
  }

  /** The policy of a gateway whose config has an `auth` section; null when it is open. */
  static of(gateway: Gateway): Policy | null {
    if (gateway.config.auth === null) return null
    let policy = policies.get(gateway)
    if (!policy) policies.set(gateway, (policy = new Policy(gateway)))
    return policy
  }

  /** The guard for this request: rebuilt only when a reload swapped the config. */
  get current(): Guard {
    const config = this.gateway.config
    if (config !== this.config) {
      this.config = config
      if (config.auth !== null) this.guard = this.build(config)
    }
    return this.guard
  }

  private build(config: GatewayConfig): Guard {
    return new Guard(config.auth!, this.buckets, process.env.SPECSERVE_ADMIN_TOKEN || undefined, this.keySets)
  }
}

/** One policy per gateway, shared by its REST and gRPC listeners (one bucket per caller, whichever it uses). */
const policies = new WeakMap<Gateway, Policy>()
