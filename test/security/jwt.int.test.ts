// JWT bearer tokens against a real issuer on a loopback port (keys made by jose, a JWKS
// endpoint, rotation): what a token must be to pass, and the attacks that must not.
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { GatewayError } from '../../src/errors.ts'
import { Guard, type Buckets, type Principal } from '../../src/security/guard.ts'
import { JwtVerifier } from '../../src/security/jwt.ts'
import { configFrom } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { AUDIENCE, ISSUER, startIssuer, type Issuer } from './issuer.ts'
import '../starter/scripted.ts'

let issuer: Issuer

const guardFor = (jwt: string, extra = ''): Guard => {
  const config = configFrom(`models: { a: { kind: scripted } }\nensembles: { e: { strategy: deadline-fallback, models: [a] } }\nauth:\n  jwt: ${jwt}\n${extra}`)
  return new Guard(config.auth!)
}
const remote = (): string => `{ jwks_url: "${issuer.url}", issuer: "${ISSUER}", audience: ${AUDIENCE}, jwks_cooldown_s: 1 }`

/** The guard's verdict on a bearer token for a predict on ensemble `e`: the caller, or the refusal's code and message. */
async function verdict(guard: Guard, token: string, access: 'predict' | 'read' = 'predict'): Promise<Principal | { code: string; message: string }> {
  try {
    return await guard.check(`Bearer ${token}`, access, 'e')
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err
    return { code: err.code, message: err.message }
  }
}

const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url')
const nowS = (): number => Math.floor(Date.now() / 1000)
beforeAll(async () => {
  issuer = await startIssuer()
})
afterAll(async () => {
  await issuer.close()
})

describe('JWT from a JWKS URL', () => {
  it('accepts a good token, with the scopes of its claim, and verifies it once', async () => {
    const guard = guardFor(remote())
    const token = await issuer.sign({ scope: 'predict:e read', sub: 'svc-1' })
    const first = guard.check(`Bearer ${token}`, 'predict', 'e')
    expect(first).toBeInstanceOf(Promise)
    const principal = await first
    expect(principal).toMatchObject({ id: 'jwt:svc-1', grants: { read: true, admin: false, debug: false } })
    // Known now: answered from the cache, synchronously, without another JWKS fetch.
    const fetches = issuer.fetches()
    expect(guard.check(`Bearer ${token}`, 'read', '')).toBe(principal)
    expect(issuer.fetches()).toBe(fetches)
  })

  it('a token just past its exp, within clock_skew_s, is verified once and then answered from the cache', async () => {
    const guard = guardFor(remote()) // clock_skew_s: 30 by default
    const token = await issuer.sign({ sub: 'late' }, { expiresIn: nowS() - 5 })
    const verify = vi.spyOn(JwtVerifier.prototype, 'verify')
    try {
      const first = guard.check(`Bearer ${token}`, 'predict', 'e')
      expect(first).toBeInstanceOf(Promise)
      const principal = await first
      expect(principal).toMatchObject({ id: 'jwt:late' })
      expect(guard.check(`Bearer ${token}`, 'predict', 'e')).toBe(principal) // synchronous: cached, not verified again
      expect(verify).toHaveBeenCalledTimes(1)
    } finally {
      verify.mockRestore()
    }
  })

  it('verifies a new token once however many requests bring it at once', async () => {
    const guard = guardFor(remote())
    const token = await issuer.sign({ sub: 'burst' })
    const verify = vi.spyOn(JwtVerifier.prototype, 'verify')
    try {
      const all = await Promise.all(Array.from({ length: 20 }, async () => guard.check(`Bearer ${token}`, 'predict', 'e')))
      expect(new Set(all).size).toBe(1)
      expect(verify).toHaveBeenCalledTimes(1)
    } finally {
      verify.mockRestore()
    }
  })

  it('refuses a token without the scope with PERMISSION_DENIED', async () => {
    const guard = guardFor(remote())
    expect(await verdict(guard, await issuer.sign({ scope: 'predict:other' }))).toEqual({ code: 'PERMISSION_DENIED', message: 'needs scope predict:e or predict:*' })
  })

  it.each([
    ['expired', { expiresIn: nowS() - 120 }, 'token expired'],
    ['not yet valid', { notBefore: nowS() + 120 }, 'token claim nbf rejected: check_failed'],
  ])('refuses a token that is %s', async (_what, options, message) => {
    expect(await verdict(guardFor(remote()), await issuer.sign({}, options))).toEqual({ code: 'UNAUTHENTICATED', message })
  })

  it('allows the configured clock skew (expired 10 s ago, skew 30 s)', async () => {
    expect(await verdict(guardFor(remote()), await issuer.sign({}, { expiresIn: nowS() - 10 }))).toMatchObject({ id: 'jwt:alice' })
  })

  it.each([
    ['audience', { aud: 'billing' }, 'token claim aud rejected: check_failed'],
    ['issuer', { iss: 'https://evil.test/' }, 'token claim iss rejected: check_failed'],
  ])('refuses a token for another %s', async (_what, claims, message) => {
    expect(await verdict(guardFor(remote()), await issuer.sign(claims))).toEqual({ code: 'UNAUTHENTICATED', message })
  })

  it('refuses alg: none', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'mallory', scope: 'predict:* admin', exp: nowS() + 300 })}.`
    expect(await verdict(guardFor(remote()), token)).toEqual({ code: 'UNAUTHENTICATED', message: 'token signed with an algorithm this gateway does not accept' })
  })

  it('refuses HS256 signed with the public key as the secret (algorithm confusion)', async () => {
    const key = issuer.current
    for (const secret of [key.spki, JSON.stringify(key.publicJwk)]) {
      const token = await new SignJWT({ scope: 'predict:* admin' })
        .setProtectedHeader({ alg: 'HS256', kid: key.kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject('mallory')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(secret))
      expect(await verdict(guardFor(remote()), token)).toEqual({ code: 'UNAUTHENTICATED', message: 'token signed with an algorithm this gateway does not accept' })
    }
  })

  it('refuses a token with a good shape but a forged signature', async () => {
    const [head, , sig] = (await issuer.sign()).split('.')
    const forged = `${head}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'mallory', scope: 'predict:* admin', exp: nowS() + 300 })}.${sig}`
    expect(await verdict(guardFor(remote()), forged)).toEqual({ code: 'UNAUTHENTICATED', message: 'token signature does not verify' })
  })

  it('refuses a token respelled in its unused base64url bits: one token gets one cache entry, not 16', async () => {
    const guard = guardFor(remote())
    const token = await issuer.sign({ sub: 'svc-1' })
    const [head, body, sig] = token.split('.') as [string, string, string]
    expect(sig.length % 4).toBe(2) // a 256-byte RS256 or 64-byte ES256 signature: its last character carries 4 unused bits
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const respelled = `${head}.${body}.${sig.slice(0, -1)}${alphabet[alphabet.indexOf(sig.at(-1)!) | 1]}`
    expect(Buffer.from(respelled.split('.')[2]!, 'base64url')).toEqual(Buffer.from(sig, 'base64url')) // the same signature bytes
    expect(await verdict(guard, respelled)).toEqual({ code: 'UNAUTHENTICATED', message: expect.stringMatching(/^token is not in canonical base64url/) })
    expect(await verdict(guard, token)).toMatchObject({ id: 'jwt:svc-1' })
  })

  it('refuses a token without exp', async () => {
    const key = issuer.current
    const token = await new SignJWT({ scope: 'predict:*' }).setProtectedHeader({ alg: key.alg, kid: key.kid }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(key.privateKey)
    expect(await verdict(guardFor(remote()), token)).toEqual({ code: 'UNAUTHENTICATED', message: 'token claim exp rejected: missing' })
  })

  it('follows a key rotated at the JWKS endpoint: new key accepted, the retired one refused', async () => {
    const guard = guardFor(remote())
    const old = issuer.current
    expect(await verdict(guard, await issuer.sign())).toMatchObject({ id: 'jwt:alice' })
    await issuer.rotate('ES256')
    const fetches = issuer.fetches()
    // jwks_cooldown_s later (performance.now() is the key set's clock): the unknown kid makes it refetch.
    const wallNow = performance.now.bind(performance)
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => wallNow() + 1000)
    try {
      expect(await verdict(guard, await issuer.sign({ sub: 'bob' }))).toMatchObject({ id: 'jwt:bob' })
      expect(issuer.fetches()).toBe(fetches + 1)
      expect(await verdict(guard, await issuer.sign({ sub: 'carol' }, { key: old }))).toEqual({ code: 'UNAUTHENTICATED', message: 'token signed by a key the issuer does not publish' })
    } finally {
      clock.mockRestore()
    }
  })

  it('a rotated key arrives no sooner than jwks_cooldown_s after the last fetch', async () => {
    const guard = guardFor(remote())
    expect(await verdict(guard, await issuer.sign())).toMatchObject({ id: 'jwt:alice' })
    // The key set's clock stands still: however slow the box (an RSA key generated below), the cooldown has not passed.
    const frozen = performance.now()
    const clock = vi.spyOn(performance, 'now').mockReturnValue(frozen)
    try {
      await issuer.rotate()
      const fetches = issuer.fetches()
      expect(await verdict(guard, await issuer.sign({ sub: 'early' }))).toEqual({ code: 'UNAUTHENTICATED', message: 'token signed by a key the issuer does not publish' })
      expect(issuer.fetches()).toBe(fetches)
    } finally {
      clock.mockRestore()
    }
  })
})

describe('the caller a token names', () => {
  it('is jwt:<sub>; without sub, the OAuth client (azp, else client_id) as jwt-client:<id>; a token naming none is refused', async () => {
    const guard = guardFor(remote())
    expect(await verdict(guard, await issuer.sign({ sub: 'svc-2', azp: 'app-1' }))).toMatchObject({ id: 'jwt:svc-2' })
    expect(await verdict(guard, await issuer.sign({ sub: null, azp: 'app-1', client_id: 'ignored' }))).toMatchObject({ id: 'jwt-client:app-1' })
    expect(await verdict(guard, await issuer.sign({ sub: null, client_id: 'app-2' }))).toMatchObject({ id: 'jwt-client:app-2' })
    expect(await verdict(guard, await issuer.sign({ sub: null }))).toEqual({ code: 'UNAUTHENTICATED', message: 'token names no caller: it needs a sub, azp or client_id claim' })
    expect(await verdict(guard, await issuer.sign({ sub: '' }))).toEqual({ code: 'UNAUTHENTICATED', message: 'token names no caller: it needs a sub, azp or client_id claim' })
  })

  it('two clients whose tokens have no sub draw on a rate-limit bucket each', async () => {
    const guard = guardFor(remote(), '  rate_limit: { rps: 0.01, burst: 1 }\n')
    const first = await issuer.sign({ sub: null, azp: 'greedy-client' })
    expect(await verdict(guard, first)).toMatchObject({ id: 'jwt-client:greedy-client' })
    expect(await verdict(guard, first)).toMatchObject({ code: 'RATE_LIMITED' })
    expect(await verdict(guard, await issuer.sign({ sub: null, client_id: 'other-client' }))).toMatchObject({ id: 'jwt-client:other-client' })
    // Among the JWT callers' buckets (bounded), not the configured callers' (never pushed out).
    const { buckets } = guard as unknown as { buckets: Buckets }
    expect([[...buckets.jwt.keys()], buckets.configured.size]).toEqual([['jwt-client:greedy-client', 'jwt-client:other-client'], 0])
  })
})

describe('JWT from a key file', () => {
  it('verifies against a PEM public key and refuses a token of another key', async () => {
    const dir = tempDir('specserve-jwt-')
    writeFileSync(join(dir, 'idp.pem'), issuer.current.spki)
    const guard = guardFor(`{ key_file: "${join(dir, 'idp.pem')}", issuer: "${ISSUER}", audience: ${AUDIENCE} }`)
    expect(await verdict(guard, await issuer.sign({ sub: 'dave' }))).toMatchObject({ id: 'jwt:dave' })
    const other = await startIssuer('ES256')
    // An RSA key verifies RS256 only: the ES256 token is refused for its algorithm, with that reason.
    expect(await verdict(guard, await other.sign())).toEqual({ code: 'UNAUTHENTICATED', message: 'token signed with an algorithm this gateway does not accept' })
    await other.close()
  })
})

describe('API keys and JWTs side by side', () => {
  it('an API key is still a key when JWTs are configured', async () => {
    const hash = createHash('sha256').update('team-a-key').digest('hex')
    const guard = guardFor(remote(), `  api_keys: [ { id: team-a, sha256: "${hash}", scopes: ["predict:e"] } ]\n`)
    expect(await verdict(guard, 'team-a-key')).toMatchObject({ id: 'team-a' })
    expect(await verdict(guard, 'team-b-key')).toEqual({ code: 'UNAUTHENTICATED', message: 'unknown API key' })
  })
})
