// The issuer's JWKS fetched from `auth.jwt.jwks_url`, made so that made-up tokens cannot turn
// an issuer outage into a flood of fetches or into requests held for a fetch's timeout:
// - at most one fetch at a time (besides one a reload overtook, below): whoever needs the set
//   while it is being fetched waits for that fetch, never starts another;
// - at most one fetch per cooldown, counted from the last attempt whether it succeeded or not
//   (jose's own remote set counts only from the last success, so an issuer answering errors
//   was asked again for every token with an unknown `kid`);
// - a failed fetch keeps the last good set: tokens it knows go on verifying, a `kid` it does
//   not know is refused at once until the cooldown has passed;
// - a set older than the cache age is fetched again in the background, the one in hand
//   verifying meanwhile, so that only a token with an unknown `kid` ever waits for a fetch
//   (and that for at most the fetch timeout);
// - the set outlives the guard that made it: a reload keeps it (KeySets) while jwks_url and
//   its timings stay the same, so a reload during an outage does not throw the last good set
//   away. The kept set is fetched again before the next key lookup (a reload is how a key the
//   issuer withdrew stops verifying), and if that fetch fails the last good set goes on. A
//   fetch in flight at the reload is not joined (it asked before the reload): its answer is
//   dropped, and the next lookup fetches the set again.
// Keys are matched and imported by jose (createLocalJWKSet): nothing here reads key material.
import { bodyAtMost } from '../body-limit.ts'
import { silentLogger, type Logger } from '../types.ts'
import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters, type JWTVerifyGetKey } from 'jose'

/** Why a token could not be checked: no set was ever fetched (or none since the cooldown began). */
export class KeysUnavailable extends Error {
  constructor() {
    super('the issuer\'s keys could not be fetched')
  }
}

export interface RemoteKeySetOptions {
  readonly url: URL
  /** Age after which the set is fetched again (in the background). */
  readonly cacheMs: number
  /** Least time between the end of one fetch and the start of the next. */
  readonly cooldownMs: number
  /** How long one fetch (answer and body) may take before it counts as failed. */
  readonly timeoutMs: number
}

const NOT_FETCHED = Promise.resolve(false)

type KeyLookup = (header: JWSHeaderParameters, token: FlattenedJWSInput) => ReturnType<JWTVerifyGetKey>

export class RemoteKeySet {
  /** Our getKey for jwtVerify. */
  readonly getKey: KeyLookup = (header, token) => this.lookup(header, token)
  /** Where a failed fetch, and the first good one after it, are said (callers see only UNAUTHENTICATED). */
  log: Logger = silentLogger
  private readonly options: RemoteKeySetOptions
  private keys: KeyLookup | null = null
  /** performance.now() of the last good fetch, and of the end of the last attempt. */
  private fetchedAt = -Infinity
  private triedAt = -Infinity
  /** The fetch in flight: resolves true if it brought a new set. Never rejects. */
  private pending: Promise<boolean> | null = null
  /** Set by a reload: the next lookup waits for one fetch (cooldown or not) before using the set in hand. */
  private stale = false
  /** The last fetch failed (and was said): the next good one is said too. */
  private failing = false

  constructor(options: RemoteKeySetOptions) {
    this.options = options
  }

  private async lookup(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    if (this.keys === null || this.stale) await this.refreshIfDue()
    else if (performance.now() - this.fetchedAt >= this.options.cacheMs) void this.refreshIfDue()
    const keys = this.keys
    if (keys === null) throw new KeysUnavailable()
    try {
      return await keys(header, token)
    } catch (err) {
      // An unknown kid is how a rotated key arrives: fetch again, if the cooldown allows.
      if (!(err instanceof errors.JWKSNoMatchingKey) || !(await this.refreshIfDue())) throw err
      return this.keys!(header, token)
    }
  }

  /**
   * A reload kept this set: fetch it again before the next lookup, without waiting for the
   * cooldown. A fetch still in flight began before the reload (its answer may hold a key the
   * issuer withdrew since): it is overtaken, and the next lookup starts a fetch of its own.
   */
  revalidate(): void {
    this.stale = true
    this.triedAt = -Infinity
    this.pending = null
  }

  /** Joins the fetch in flight, or starts one if the cooldown has passed; whether a new set arrived. */
  private refreshIfDue(): Promise<boolean> {
    if (this.pending !== null) return this.pending
    if (performance.now() - this.triedAt < this.options.cooldownMs) return NOT_FETCHED
    const fetched: Promise<boolean> = this.fetchSet().then(
      (keys) => this.settle(fetched, keys),
      (err: unknown) => this.settle(fetched, null, err),
    )
    this.pending = fetched
    return fetched
  }

  /**
   * Records how a fetch ended (`keys` null: it failed), unless a reload overtook it: then it
   * changes nothing, and whoever waited on it waits for the fetch started since, if one runs.
   */
  private settle(fetched: Promise<boolean>, keys: KeyLookup | null, err?: unknown): boolean | Promise<boolean> {
    if (this.pending !== fetched) return this.pending ?? this.keys !== null
    this.pending = null
    this.stale = false
    this.triedAt = performance.now()
    // A failed fetch keeps the last good set (if any); the next attempt waits for the cooldown (so this says it at most once per cooldown).
    if (keys === null) {
      this.failing = true
      const error = err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err)
      this.log.warn({ jwks_url: this.options.url.href, error, last_good_set: this.keys !== null }, 'JWKS fetch failed: tokens signed by a key not in the last good set are refused UNAUTHENTICATED until a fetch succeeds')
      return false
    }
    if (this.failing) this.log.info({ jwks_url: this.options.url.href }, 'JWKS fetched again')
    this.failing = false
    this.keys = keys
    this.fetchedAt = this.triedAt
    return true
  }

  private async fetchSet(): Promise<KeyLookup> {
    const response = await fetch(this.options.url, {
      signal: AbortSignal.timeout(this.options.timeoutMs),
      redirect: 'manual',
      headers: { accept: 'application/json, application/jwk-set+json' },
    })
    if (response.status !== 200) {
      await response.body?.cancel()
      throw new Error(`JWKS endpoint answered ${response.status}`)
    }
    const body = await bodyAtMost(response, MAX_JWKS_BYTES)
    if (body === null) throw new Error(`JWKS endpoint answered more than ${MAX_JWKS_BYTES} bytes`)
    return createLocalJWKSet(JSON.parse(body.toString('utf8')) as JSONWebKeySet)
  }
}

/**
 * The remote key set of the config being served, shared by the guards successive reloads
 * build (as the rate-limit buckets are): the same set while jwks_url and its timings are
 * unchanged, a new one (with no keys yet) when they change.
 */
export class KeySets {
  private kept: { readonly definition: string; readonly set: RemoteKeySet } | null = null
  private logger: Logger = silentLogger

  /** Where the sets' fetch failures are said, from now on. */
  set log(log: Logger) {
    this.logger = log
    if (this.kept) this.kept.set.log = log
  }

  for(options: RemoteKeySetOptions): RemoteKeySet {
    const definition = `${options.url.href} ${options.cacheMs} ${options.cooldownMs} ${options.timeoutMs}`
    if (this.kept?.definition === definition) {
      this.kept.set.revalidate()
      return this.kept.set
    }
    const set = new RemoteKeySet(options)
    set.log = this.logger
    this.kept = { definition, set }
    return set
  }
}

/** A key set is a few KiB: a larger body is not one, and is not read whole into memory. */
export const MAX_JWKS_BYTES = 1 << 20
