// The guard of the config being served. Keys, scopes and limits follow a reload (a key
// removed from the file is refused from the next request on); whether auth is on at all is
// decided at start, because the listeners' hooks are: a reload that adds or removes the
// `auth` section is reported as needing a restart, and until then the last auth section
// keeps applying (a reload never opens a guarded gateway).
// The guard is rebuilt only when the `auth` section itself is another object, which only a
// config read from the file makes: a registry swap (an upload, a rollback, a model-stream
// record, a canary decision) serves `{...config, models}` with the same `auth`, and must not
// drop the verified-token cache nor send the issuer a JWKS fetch each time.
import type { Gateway } from '../gateway.ts'
import type { Logger } from '../types.ts'
import type { AuthConfig } from './config.ts'
import { adminTokenFromEnv } from './exposure.ts'
import { Buckets, Guard } from './guard.ts'
import { KeySets } from './jwks.ts'
import { refusalsOf, type Refusals } from './refusals.ts'

export class Policy {
  private readonly gateway: Gateway
  /** The gateway's refusal counts, which each listener adds its refusals to. */
  readonly refusals: Refusals
  private readonly buckets = new Buckets()
  /** The issuer's key set, kept across reloads as the buckets are: a reload during an issuer outage keeps the last good keys. */
  private readonly keySets = new KeySets()
  /** The auth section the guard was built from. */
  private auth: AuthConfig
  private guard: Guard

  private constructor(gateway: Gateway, auth: AuthConfig) {
    this.gateway = gateway
    this.refusals = refusalsOf(gateway)
    this.auth = auth
    this.guard = this.build(auth)
  }

  /** The policy of a gateway whose config has an `auth` section; null when it is open. `log`: where its issuer's outages are said. */
  static of(gateway: Gateway, log?: Logger): Policy | null {
    const auth = gateway.config.auth
    if (auth === null) return null
    let policy = policies.get(gateway)
    if (!policy) policies.set(gateway, (policy = new Policy(gateway, auth)))
    if (log) policy.keySets.log = log
    return policy
  }

  /** The guard for this request: rebuilt only when a config reload brought an auth section. */
  get current(): Guard {
    const auth = this.gateway.config.auth
    if (auth !== this.auth && auth !== null) {
      this.auth = auth
      this.guard = this.build(auth)
    }
    return this.guard
  }

  private build(auth: AuthConfig): Guard {
    return new Guard(auth, this.buckets, adminTokenFromEnv(), this.keySets)
  }
}

/** One policy per gateway, shared by its REST and gRPC listeners (one bucket per caller, whichever it uses). */
const policies = new WeakMap<Gateway, Policy>()
