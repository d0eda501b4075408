// The one policy every frontend asks: who is calling (a credential resolved once, then
// cached), may they do this (scopes), and are they within their rate. REST and gRPC hand
// it the `authorization` value and what the call needs; it returns the caller, or throws
// the GatewayError to answer with (UNAUTHENTICATED, PERMISSION_DENIED, RATE_LIMITED).
//
// A credential is resolved once: an API key is hashed and compared (in constant time)
// against every configured digest the first time it is seen, a JWT verified once; the
// caller found is cached by the credential (`Bearer <token>`, however the header spaced or
// cased it: one credential, one entry), an API key for as long as this config serves, a JWT
// for as long as the verifier would accept it (its exp, plus the clock skew allowed), so a
// request with known credentials costs one Map lookup. The cache is bounded; the oldest
// entry goes first.
import { timingSafeEqual } from 'node:crypto'
import type { JWTPayload } from 'jose'
import { GatewayError } from '../errors.ts'
import { quote } from '../tensor/index.ts'
import { TokenBucket } from './bucket.ts'
import { sha256 } from './digest.ts'
import type { AuthConfig, RateSettings } from './config.ts'
import type { KeySets } from './jwks.ts'
import { JwtVerifier } from './jwt.ts'
import { allows, claimScopes, compileScopes, type Access, type Grants } from './scopes.ts'

export interface Principal {
  /** The API key's id, `jwt:<sub>`, `jwt-client:<azp or client_id>`, `cert:<subject>`, or `anonymous`. */
  readonly id: string
  readonly grants: Grants
  readonly bucket: TokenBucket | null
}

interface Cached {
  readonly principal: Principal
  /** Date.now() after which the entry is stale (a JWT's exp). */
  readonly until: number
}

/** The admin token's bucket among the configured callers', named apart from API key ids as client certificates' `cert:` ones are. */
const ADMIN_TOKEN_BUCKET = 'env:SPECSERVE_ADMIN_TOKEN'

/** Most credentials (and JWT callers' buckets) remembered at once. */
export const MAX_CACHED = 10_000

/**
 * Rate-limit buckets by principal id, shared with the guards of later configs (a reload does
 * not refill them). The configured callers' (API keys, certificates) are all kept: however
 * many JWT callers come, none of theirs is pushed out. JWT callers' are at most MAX_CACHED,
 * the one verified least recently going first.
 */
export class Buckets {
  readonly configured = new Map<string, TokenBucket>()
  readonly jwt = new Map<string, TokenBucket>()
}
const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]*$/
/** The scheme and the one space after it (any case); what follows is the token, trimmed. */
const BEARER = /^bearer /i
const CANONICAL_SCHEME = 'Bearer '

// Refusals that carry nothing of the request: made once, thrown as they are.
const MISSING = new GatewayError('UNAUTHENTICATED', 'credentials required: send authorization: Bearer <API key or JWT>')
const NOT_BEARER = new GatewayError('UNAUTHENTICATED', 'unsupported authorization scheme: send authorization: Bearer <API key or JWT>')
const UNKNOWN_KEY = new GatewayError('UNAUTHENTICATED', 'unknown API key')
const NO_CALLER = new GatewayError('UNAUTHENTICATED', 'token names no caller: it needs a sub, azp or client_id claim')

const claimText = (claim: unknown): string | null => (typeof claim === 'string' && claim !== '' ? claim : null)

/**
 * Who a verified token's bearer is, which is also whose rate-limit bucket it draws on: its
 * subject, `jwt:<sub>`; a client-credentials token without one names its OAuth client,
 * `jwt-client:<azp or client_id>` (a prefix of its own, so that no subject can pass for a
 * client). Null when it names neither: such tokens are refused rather than all made one
 * caller, who would share one bucket. Every name is a claim the issuer signed.
 */
function callerOf(payload: JWTPayload): string | null {
  const subject = claimText(payload.sub)
  if (subject !== null) return `jwt:${subject}`
  const client = claimText(payload.azp) ?? claimText(payload.client_id)
  return client === null ? null : `jwt-client:${client}`
}

const deny = (access: Access, ensemble: string): GatewayError =>
  new GatewayError('PERMISSION_DENIED', access === 'predict' ? (ensemble === '' ? 'needs scope predict:* (the call names no ensemble)' : `needs scope predict:${quote(ensemble).slice(1, -1)} or predict:*`) : access === 'authenticated' ? 'needs credentials' : `needs scope ${access === 'health' ? 'health (anonymous)' : access}`)

/**
 * Asks a known caller for one more call: its scope for `access` (on `ensemble`) and a token
 * from its rate limit: the guard's last step.
 */
function admit(principal: Principal, access: Access, ensemble: string): Principal {
  // The token first: every call a caller makes counts, refused by its scopes or not.
  const bucket = principal.bucket
  if (bucket !== null && !bucket.take(performance.now())) {
    throw new GatewayError('RATE_LIMITED', `${principal.id} is over its rate limit of ${bucket.rate.rps}/s; retry after ${bucket.retryAfterS} s`, { retry_after_s: bucket.retryAfterS })
  }
  if (!allows(principal.grants, access, ensemble)) throw deny(access, ensemble)
  return principal
}

export class Guard {
  readonly anonymous: Principal
  private readonly keys: readonly { readonly digest: Buffer; readonly principal: Principal }[]
  /** Callers named by their connection's verified client certificate, by canonical subject. */
  private readonly certs: ReadonlyMap<string, Principal>
  private readonly jwt: JwtVerifier | null
  private readonly jwtRate: RateSettings | null
  private readonly scopesClaim: string
  private readonly cache = new Map<string, Cached>()
  /** JWTs being verified now, by header value: gone once settled. */
  private readonly verifying = new Map<string, Promise<Principal>>()
  private readonly buckets: Buckets
  /** How long past its exp a JWT is still accepted (clock_skew_s): its cache entry lasts as long. */
  private readonly skewMs: number

  /**
   * `buckets` and `keySets` are the policy's, shared with the guards of later configs. The
   * verified-token cache is not: a reload re-verifies every token (against the kept key set),
   * so that a key the issuer withdrew, or changed issuer, audience or scope settings, apply.
   */
  constructor(auth: AuthConfig, buckets = new Buckets(), adminToken?: string, keySets?: KeySets) {
    this.buckets = buckets
    this.skewMs = (auth.jwt?.clockSkewS ?? 0) * 1000
    const now = performance.now()
    this.anonymous = { id: 'anonymous', grants: auth.anonymous, bucket: null }
    const keys = auth.apiKeys.map((k) => ({ digest: k.digest, principal: { id: k.id, grants: k.grants, bucket: this.bucketFor(k.id, k.rate, now, buckets.configured) } }))
    // SPECSERVE_ADMIN_TOKEN is folded in as one more key with the admin scope (and only that), and auth.rate_limit's bucket.
    if (adminToken) keys.push({ digest: sha256(adminToken), principal: { id: 'admin-token', grants: compileScopes(['admin']), bucket: this.bucketFor(ADMIN_TOKEN_BUCKET, auth.rate, now, buckets.configured) } })
    this.keys = keys
    this.certs = new Map(auth.clientCerts.map((c) => [c.subject, { id: `cert:${c.subject}`, grants: c.grants, bucket: this.bucketFor(`cert:${c.subject}`, c.rate, now, buckets.configured) }]))
    this.jwt = auth.jwt ? new JwtVerifier(auth.jwt, keySets) : null
    this.jwtRate = auth.rate
    this.scopesClaim = auth.jwt?.scopesClaim ?? 'scope'
  }

  /** Whether client certificates name callers here: frontends only read a peer's certificate if so. */
  get namesCertificates(): boolean {
    return this.certs.size > 0
  }

  /**
   * The caller of a call needing `access` (on `ensemble`, for a predict), from its
   * authorization value or else its connection's verified client certificate (`certSubject`,
   * in subjectKey form). Synchronous for anonymous callers, certificates and cached
   * credentials; a promise the first time a JWT is seen. Throws (or rejects with) the
   * GatewayError to answer.
   */
  check(authorization: string | undefined, access: Access, ensemble: string, certSubject?: string): Principal | Promise<Principal> {
    if (authorization === undefined || authorization === '') {
      // Bearer credentials, when sent, name the caller; a certificate names it otherwise.
      const byCert = certSubject === undefined ? undefined : this.certs.get(certSubject)
      if (byCert !== undefined) return admit(byCert, access, ensemble)
      if (allows(this.anonymous.grants, access, ensemble)) return this.anonymous
      throw MISSING
    }
    const credential = canonical(authorization)
    if (credential === null) throw NOT_BEARER
    const hit = this.cache.get(credential)
    if (hit !== undefined && hit.until > Date.now()) return admit(hit.principal, access, ensemble)
    const token = credential.slice(CANONICAL_SCHEME.length)
    if (this.jwt !== null && JWT_SHAPE.test(token)) {
      // Requests that bring the same new token at once share its one verification.
      let verifying = this.verifying.get(credential)
      if (verifying === undefined) {
        verifying = this.verifyJwt(credential, token).finally(() => this.verifying.delete(credential))
        this.verifying.set(credential, verifying)
      }
      return verifying.then((principal) => admit(principal, access, ensemble))
    }
    return admit(this.apiKey(credential, token), access, ensemble)
  }

  /** Every digest is compared, whichever matches: the time taken says nothing about which key is close. */
  private apiKey(credential: string, token: string): Principal {
    const digest = sha256(token)
    let found: Principal | undefined
    for (const key of this.keys) if (timingSafeEqual(digest, key.digest)) found = key.principal
    if (found === undefined) throw UNKNOWN_KEY
    this.remember(credential, found, Infinity)
    return found
  }

  private async verifyJwt(credential: string, token: string): Promise<Principal> {
    let payload
    try {
      payload = await this.jwt!.verify(token)
    } catch (err) {
      throw new GatewayError('UNAUTHENTICATED', (err as Error).message) // the reason only: never key material
    }
    const id = callerOf(payload)
    if (id === null) throw NO_CALLER
    const principal: Principal = { id, grants: compileScopes(claimScopes(payload[this.scopesClaim])), bucket: this.bucketFor(id, this.jwtRate, performance.now(), this.buckets.jwt) }
    // As long as the verifier would accept it: cached only until exp, a token within the skew past it would be verified at every call.
    this.remember(credential, principal, (payload.exp as number) * 1000 + this.skewMs)
    return principal
  }

  private remember(credential: string, principal: Principal, until: number): void {
    setNewest(this.cache, credential, { principal, until })
  }

  /** The caller's bucket in `buckets`: its own, or a new one for a new caller or a changed rate. */
  private bucketFor(id: string, rate: RateSettings | null, now: number, buckets: Map<string, TokenBucket>): TokenBucket | null {
    if (rate === null) return null
    const known = buckets.get(id)
    const bucket = known !== undefined && known.rate.rps === rate.rps && known.rate.burst === rate.burst ? known : new TokenBucket(rate, now)
    // JWT callers' are bounded, the least recently verified going first; configured callers' never are.
    if (buckets === this.buckets.jwt) setNewest(buckets, id, bucket)
    else buckets.set(id, bucket)
    return bucket
  }
}

/**
 * The credential an authorization value carries, as `Bearer <token>` (the token without the
 * spaces or control characters around it): the cache's key, so that respacing or recasing one
 * credential cannot make it many entries (and push everyone else's out). What clients send is
 * already that form and is returned as it is, without allocating; null when the scheme is not
 * Bearer or no token follows. A loop, not a regex: no backtracking on a header of spaces.
 * Also how SPECSERVE_ADMIN_TOKEN is read without a guard (admin-token.ts).
 */
export function canonical(authorization: string): string | null {
  if (!BEARER.test(authorization)) return null
  const length = authorization.length
  let start = CANONICAL_SCHEME.length
  while (start < length && authorization.charCodeAt(start) <= 32) start++
  let end = length
  while (end > start && authorization.charCodeAt(end - 1) <= 32) end--
  if (start === end) return null
  if (start === CANONICAL_SCHEME.length && end === length && authorization.startsWith(CANONICAL_SCHEME)) return authorization
  return CANONICAL_SCHEME + authorization.slice(start, end)
}

/**
 * Sets `key` as the newest entry of a map bounded at MAX_CACHED: one already there takes its own
 * place again (it pushes no one out); a new one pushes the oldest out when the map is full.
 */
function setNewest<V>(map: Map<string, V>, key: string, value: V): void {
  if (!map.delete(key) && map.size >= MAX_CACHED) {
    const oldest = map.keys().next()
    if (!oldest.done) map.delete(oldest.value)
  }
  map.set(key, value)
}

