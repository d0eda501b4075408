// The `auth` section and `server.tls`: their YAML shape, and the typed settings they parse
// into once, at load (key hashes decoded, JWT key files read, scopes compiled). Nothing on
// the request path reads the YAML.
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { configPath } from '../config/paths.ts'
import Type, { type Static } from 'typebox'
import { isLoopback } from './exposure.ts'
import { compileScopes, SCOPE_PATTERN, type Grants } from './scopes.ts'
import { checkTlsFiles, TlsFilesError } from './tls.ts'

const Scopes = Type.Array(Type.String({ pattern: SCOPE_PATTERN }))
const RateLimit = Type.Object({ rps: Type.Number({ exclusiveMinimum: 0 }), burst: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false })

export const ApiKeySchema = Type.Object(
  {
    id: Type.String({ minLength: 1 }),
    sha256: Type.Optional(Type.String()),
    /** Never valid: accepted by the schema only so that `validate` can say why a plaintext key is refused. */
    key: Type.Optional(Type.String()),
    scopes: Scopes,
    rate_limit: Type.Optional(RateLimit),
  },
  { additionalProperties: false },
)

export const JwtSchema = Type.Object(
  {
    jwks_url: Type.Optional(Type.String({ pattern: '^https?://' })),
    key_file: Type.Optional(Type.String({ minLength: 1 })),
    issuer: Type.Optional(Type.String({ minLength: 1 })),
    audience: Type.Optional(Type.String({ minLength: 1 })),
    scopes_claim: Type.Optional(Type.String({ minLength: 1 })),
    algorithms: Type.Optional(Type.Array(Type.Union([Type.Literal('RS256'), Type.Literal('ES256')]), { minItems: 1 })),
    clock_skew_s: Type.Optional(Type.Number({ minimum: 0, maximum: 300 })),
    /** How long a fetched JWKS is trusted before it is fetched again (an unknown `kid` refetches sooner). */
    jwks_cache_s: Type.Optional(Type.Number({ minimum: 1 })),
    /** Least time between two fetches of the JWKS, failed ones included (a token with an unknown `kid` refetches no sooner). */
    jwks_cooldown_s: Type.Optional(Type.Number({ minimum: 1 })),
    /** How long one JWKS fetch may take; a token with an unknown `kid` waits for it at most this long. */
    jwks_timeout_ms: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000 })),
  },
  { additionalProperties: false },
)

export const ClientCertSchema = Type.Object(
  {
    /** The certificate's subject, attribute=value pairs separated by commas (`CN=checkout,O=Acme`): all of it, in any order. */
    subject: Type.String({ minLength: 1 }),
    scopes: Scopes,
    rate_limit: Type.Optional(RateLimit),
  },
  { additionalProperties: false },
)

export const AuthSchema = Type.Object(
  {
    api_keys: Type.Optional(Type.Array(ApiKeySchema)),
    client_certs: Type.Optional(Type.Array(ClientCertSchema)),
    jwt: Type.Optional(JwtSchema),
    anonymous: Type.Optional(Type.Array(Type.Union([Type.Literal('health'), Type.Literal('metrics'), Type.Literal('read')]))),
    rate_limit: Type.Optional(RateLimit),
  },
  { additionalProperties: false },
)

export const TlsSchema = Type.Object(
  {
    cert: Type.String({ minLength: 1 }),
    key: Type.String({ minLength: 1 }),
    client_ca: Type.Optional(Type.String({ minLength: 1 })),
    require_client_cert: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

export type RawAuth = Static<typeof AuthSchema>
export type RawTls = Static<typeof TlsSchema>

export interface RateSettings {
  /** Tokens added per second. */
  readonly rps: number
  /** Bucket size: requests that may come at once after a quiet spell. */
  readonly burst: number
}

export interface ApiKeyEntry {
  readonly id: string
  /** The SHA-256 digest of the key (32 bytes). The key itself is never in the config. */
  readonly digest: Buffer
  readonly grants: Grants
  readonly rate: RateSettings | null
}

/** A client certificate's subject named as a caller (`auth.client_certs`). */
export interface ClientCertEntry {
  /** The subject in canonical form (subjectKey): what a verified peer certificate's subject is compared with. */
  readonly subject: string
  readonly grants: Grants
  readonly rate: RateSettings | null
}

export type JwtKeySource = { readonly kind: 'jwks_url'; readonly url: URL; readonly cacheMs: number; readonly cooldownMs: number; readonly timeoutMs: number } | { readonly kind: 'key'; readonly key: KeyObject } | { readonly kind: 'jwks'; readonly jwks: { keys: object[] } }

export type JwtAlgorithm = 'RS256' | 'ES256'

export interface JwtSettings {
  readonly source: JwtKeySource
  readonly issuer: string | undefined
  readonly audience: string | undefined
  readonly scopesClaim: string
  readonly algorithms: readonly JwtAlgorithm[]
  readonly clockSkewS: number
}

export interface AuthConfig {
  readonly apiKeys: readonly ApiKeyEntry[]
  /** Callers named by the verified client certificate of their connection (needs server.tls.client_ca). */
  readonly clientCerts: readonly ClientCertEntry[]
  readonly jwt: JwtSettings | null
  /** What a request without credentials may do. */
  readonly anonymous: Grants
  readonly rate: RateSettings | null
}

export interface TlsConfig {
  readonly cert: string
  readonly key: string
  readonly clientCa: string | undefined
  readonly requireClientCert: boolean
}

/** Where parseAuth reports: `field` is a dotted path below the section. */
export interface SecurityContext {
  readonly baseDir: string
  problem(field: string, message: string): void
  warn(field: string, message: string): void
}

const HEX_SHA256 = /^[0-9a-f]{64}$/i

const rateOf = (raw: Static<typeof RateLimit> | undefined): RateSettings | null => (raw ? { rps: raw.rps, burst: raw.burst ?? Math.max(1, Math.ceil(raw.rps)) } : null)

export function parseAuth(raw: RawAuth, ctx: SecurityContext): AuthConfig {
  const apiKeys: ApiKeyEntry[] = []
  const ids = new Set<string>()
  ;(raw.api_keys ?? []).forEach((k, i) => {
    if (k.key !== undefined) ctx.problem(`api_keys.${i}.key`, 'a plaintext key does not belong in the config: give its SHA-256 as sha256 (printf %s "$KEY" | sha256sum)')
    if (k.sha256 === undefined) {
      if (k.key === undefined) ctx.problem(`api_keys.${i}`, 'missing sha256: the hex SHA-256 of the key')
      return
    }
    if (!HEX_SHA256.test(k.sha256)) {
      ctx.problem(`api_keys.${i}.sha256`, 'not a hex SHA-256 (64 hex digits); is this the key itself? Give its hash (printf %s "$KEY" | sha256sum)')
      return
    }
    if (ids.has(k.id)) ctx.problem(`api_keys.${i}.id`, `id "${k.id}" is used twice`)
    ids.add(k.id)
    apiKeys.push({ id: k.id, digest: Buffer.from(k.sha256, 'hex'), grants: compileScopes(k.scopes), rate: rateOf(k.rate_limit) ?? rateOf(raw.rate_limit) })
  })
  const clientCerts: ClientCertEntry[] = []
  ;(raw.client_certs ?? []).forEach((c, i) => {
    const pairs = c.subject.split(',').map((part) => part.trim())
    const bad = pairs.find((pair) => !/^[A-Za-z][\w.-]*=.+$/.test(pair))
    if (bad !== undefined) {
      ctx.problem(`client_certs.${i}.subject`, `"${bad}" is not attribute=value: a subject is pairs like CN=checkout,O=Acme (a value cannot hold a comma)`)
      return
    }
    const subject = subjectKey(pairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]))
    if (clientCerts.some((known) => known.subject === subject)) ctx.problem(`client_certs.${i}.subject`, `subject "${c.subject}" is named twice`)
    clientCerts.push({ subject, grants: compileScopes(c.scopes), rate: rateOf(c.rate_limit) ?? rateOf(raw.rate_limit) })
  })
  const anonymous = raw.anonymous ?? ['health']
  return { apiKeys, clientCerts, jwt: raw.jwt ? parseJwt(raw.jwt, ctx) : null, anonymous: compileScopes([], anonymous), rate: rateOf(raw.rate_limit) }
}

/** What RFC 4514 escapes in an attribute value (leading/trailing spaces and `#` aside: values are compared, not parsed). */
const SUBJECT_SPECIALS = /[\\,=+]/g

/**
 * A subject in one canonical form, from config text or a peer certificate's parsed subject
 * (Node: `{ CN: 'a', OU: ['x', 'y'] }`): `ATTR=value` pairs, attribute names upper-cased,
 * sorted, joined by commas. Equal forms mean the same attributes with the same values.
 * Values are escaped (RFC 4514: `\`, `,`, `=`, `+`), so that a value cannot pass for more
 * pairs: a certificate whose CN is `checkout,O=Acme` is `CN=checkout\,O\=Acme`, not the
 * subject `CN=checkout,O=Acme`.
 */
export function subjectKey(pairs: Iterable<readonly [string, string | readonly string[] | undefined]>): string {
  const parts: string[] = []
  for (const [attribute, value] of pairs) {
    if (value === undefined) continue
    for (const v of typeof value === 'string' ? [value] : value) parts.push(`${attribute.toUpperCase()}=${v.replace(SUBJECT_SPECIALS, '\\$&')}`)
  }
  return parts.sort().join(',')
}

function parseJwt(raw: Static<typeof JwtSchema>, ctx: SecurityContext): JwtSettings | null {
  if ((raw.jwks_url === undefined) === (raw.key_file === undefined)) {
    ctx.problem('jwt', 'give exactly one of jwks_url (the issuer\'s JWKS endpoint) or key_file (a PEM public key or a JWKS file)')
    return null
  }
  if (raw.audience === undefined) ctx.warn('jwt.audience', 'no audience: any token the issuer signs for any service is accepted here; set audience')
  if (raw.issuer === undefined) ctx.warn('jwt.issuer', 'no issuer: tokens are not checked for who issued them; set issuer')
  const source = raw.jwks_url !== undefined ? jwksSource(raw, ctx) : readKeyFile(configPath(ctx.baseDir, raw.key_file!), ctx)
  if (!source) return null
  const algorithms = acceptedAlgorithms(source, raw.algorithms ?? ['RS256', 'ES256'], ctx)
  if (!algorithms) return null
  return {
    source,
    issuer: raw.issuer,
    audience: raw.audience,
    scopesClaim: raw.scopes_claim ?? 'scope',
    algorithms,
    clockSkewS: raw.clock_skew_s ?? 30,
  }
}

/**
 * A PEM key verifies one algorithm (RS256 an RSA key, ES256 an EC P-256 one): only that one is
 * accepted, so a token signed with the other is refused as an algorithm this gateway does not
 * accept, not as a key error with no reason. A JWKS names each key's algorithm itself.
 */
function acceptedAlgorithms(source: JwtKeySource, configured: readonly JwtAlgorithm[], ctx: SecurityContext): readonly JwtAlgorithm[] | null {
  if (source.kind !== 'key') return configured
  const verifies: JwtAlgorithm = source.key.asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256'
  if (configured.includes(verifies)) return [verifies]
  ctx.problem('jwt.algorithms', `key_file holds ${verifies === 'RS256' ? 'an RSA' : 'an EC P-256'} key, which verifies ${verifies} tokens only, and algorithms lists ${configured.join(', ')}: no token could verify`)
  return null
}

function jwksSource(raw: Static<typeof JwtSchema>, ctx: SecurityContext): JwtKeySource | null {
  let url: URL
  try {
    url = new URL(raw.jwks_url!)
  } catch {
    ctx.problem('jwt.jwks_url', `"${raw.jwks_url}" is not a URL`)
    return null
  }
  // The keys every token is checked with must not be open to a man in the middle: plain HTTP is for loopback only.
  if (url.protocol === 'http:' && !isLoopback(url.hostname.replace(/^\[(.*)\]$/, '$1'))) {
    ctx.warn('jwt.jwks_url', `plain http:// to ${url.hostname}: whoever can alter the traffic can serve their own keys and sign any token; use https://`)
  }
  return { kind: 'jwks_url', url, cacheMs: (raw.jwks_cache_s ?? 600) * 1000, cooldownMs: (raw.jwks_cooldown_s ?? 30) * 1000, timeoutMs: raw.jwks_timeout_ms ?? 2000 }
}

/** A PEM public key, or a JWKS document (`{"keys": [...]}`). */
function readKeyFile(path: string, ctx: SecurityContext): JwtKeySource | null {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    ctx.problem('jwt.key_file', `cannot read ${path}`)
    return null
  }
  try {
    if (text.trimStart().startsWith('{')) {
      const jwks = JSON.parse(text) as { keys?: unknown }
      if (!Array.isArray(jwks.keys)) throw new Error('a JWKS file needs a "keys" array')
      return { kind: 'jwks', jwks: { keys: jwks.keys as object[] } }
    }
    const key = createPublicKey(text)
    const curve = key.asymmetricKeyDetails?.namedCurve
    if (key.asymmetricKeyType === 'ec' && curve !== 'prime256v1') throw new Error(`an EC key on ${curve ?? 'an unknown curve'}; ES256 needs P-256 (prime256v1)`)
    if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') throw new Error(`a ${key.asymmetricKeyType} key; RS256 needs RSA, ES256 an EC P-256 key`)
    return { kind: 'key', key }
  } catch (err) {
    ctx.problem('jwt.key_file', `${path} is not a PEM public key or a JWKS: ${(err as Error).message}`)
    return null
  }
}

export function parseTls(raw: RawTls, ctx: SecurityContext): TlsConfig {
  const tls = {
    cert: configPath(ctx.baseDir, raw.cert),
    key: configPath(ctx.baseDir, raw.key),
    clientCa: raw.client_ca === undefined ? undefined : configPath(ctx.baseDir, raw.client_ca),
    requireClientCert: raw.require_client_cert ?? false,
  }
  // Checked as serve uses them (the same check as at start and at each change of the files).
  try {
    checkTlsFiles(tls)
  } catch (err) {
    if (!(err instanceof TlsFilesError)) throw err
    for (const { field, message } of err.problems) ctx.problem(field, message)
  }
  if (tls.requireClientCert && !tls.clientCa) ctx.problem('require_client_cert', 'needs client_ca: the CA that signs the client certificates')
  return tls
}
