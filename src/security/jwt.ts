// JWT bearer tokens, verified by jose (no hand-rolled crypto): the signature against the
// configured key or the issuer's JWKS (fetched, cached, refetched for an unknown `kid`,
// which is how a rotated key arrives: src/security/jwks.ts), only the configured asymmetric algorithms (so
// `alg: none` and HS256-signed-with-the-public-key tokens are refused), then iss, aud,
// exp and nbf with the configured clock skew. exp is required: a token without one would
// be good forever.
import { createLocalJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type { KeyObject } from 'node:crypto'
import type { JwtSettings } from './config.ts'
import { KeysUnavailable, RemoteKeySet, type KeySets } from './jwks.ts'

export class JwtVerifier {
  private readonly key: KeyObject | JWTVerifyGetKey
  private readonly options: Parameters<typeof jwtVerify>[2]

  /** `keySets`: the policy's, so that a remote key set outlives a reload (none: a set of its own). */
  constructor(settings: JwtSettings, keySets?: KeySets) {
    const { source } = settings
    this.key =
      source.kind === 'key'
        ? source.key
        : source.kind === 'jwks'
          ? createLocalJWKSet(source.jwks as Parameters<typeof createLocalJWKSet>[0])
          : (keySets?.for(source) ?? new RemoteKeySet(source)).getKey
    this.options = {
      algorithms: [...settings.algorithms],
      clockTolerance: settings.clockSkewS,
      requiredClaims: ['exp'],
      ...(settings.issuer !== undefined && { issuer: settings.issuer }),
      ...(settings.audience !== undefined && { audience: settings.audience }),
    }
  }

  /** The token's claims; rejects with a message a client may see (why its token was refused, never key material). */
  async verify(token: string): Promise<JWTPayload> {
    // Each spelling of one token would be verified and cached apart (see canonicalSegments).
    if (!canonicalSegments(token)) throw new Error('token is not in canonical base64url: a segment has bits that encode nothing, or a length no encoding has')
    try {
      const { payload } = await jwtVerify(token, this.key as KeyObject, this.options)
      return payload
    } catch (err) {
      throw new Error(reason(err), { cause: err })
    }
  }
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * Whether every dot-separated segment of the token is canonical base64url: the last character
 * of a segment whose length is not a multiple of 4 also carries bits past its bytes (4 or 2),
 * which decoders ignore. In the signature (the header and payload are signed as written), they
 * give one signed token up to 16 spellings that all verify: each would be its own cache entry
 * and push other callers out. RFC 7515's encoders leave those bits 0; a token with them set
 * (in any segment) is refused, as is a segment no base64url can be (a length of 4n + 1).
 */
export function canonicalSegments(token: string): boolean {
  let start = 0
  for (;;) {
    const dot = token.indexOf('.', start)
    const end = dot === -1 ? token.length : dot
    const rest = (end - start) % 4
    if (rest === 1) return false
    if (rest !== 0) {
      const bits = BASE64URL.indexOf(token[end - 1]!)
      if (bits === -1 || (bits & (rest === 2 ? 0x0f : 0x03)) !== 0) return false
    }
    if (dot === -1) return true
    start = dot + 1
  }
}

function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired'
  if (err instanceof errors.JWTClaimValidationFailed) return `token claim ${err.claim} rejected: ${err.reason}`
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token signed with an algorithm this gateway does not accept'
  if (err instanceof errors.JWKSNoMatchingKey) return 'token signed by a key the issuer does not publish'
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not verify'
  if (err instanceof KeysUnavailable || err instanceof errors.JWKSTimeout || (err as { code?: string })?.code === 'ERR_JWKS_INVALID') return 'the issuer\'s keys could not be fetched'
  if (err instanceof errors.JOSEError) return `token rejected (${err.code})`
  return 'token rejected'
}
