// The issuer's JWKS when the issuer is down, against a real JWKS endpoint on a loopback port
// that counts its fetches: made-up tokens must not set off a fetch each, nor hold a request
// longer than jwks_timeout_ms, and the last good key set keeps verifying real tokens.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { GatewayError } from '../../src/errors.ts'
import { Guard, type Principal } from '../../src/security/guard.ts'
import { KeySets } from '../../src/security/jwks.ts'
import { configFrom } from '../helpers.ts'
import { AUDIENCE, ISSUER, startIssuer, type Issuer } from './issuer.ts'
import '../starter/scripted.ts'

let issuer: Issuer
/** Moves performance.now() (the key set's clock for cache age and cooldown) forward. */
let clockOffset = 0
const wallNow = performance.now.bind(performance)
const later = (ms: number): void => {
  clockOffset += ms
}

beforeEach(async () => {
  issuer = await startIssuer()
  clockOffset = 0
  vi.spyOn(performance, 'now').mockImplementation(() => wallNow() + clockOffset)
})
afterEach(async () => {
  vi.restoreAllMocks()
  await issuer.close()
})

/** A guard as a config load builds it; `keySets` shared between two guards makes the second one a reload's. */
const guardFor = (settings = '', keySets?: KeySets): Guard => {
  const jwt = `{ jwks_url: "${issuer.url}", issuer: "${ISSUER}", audience: ${AUDIENCE}, jwks_cooldown_s: 30, jwks_cache_s: 600${settings} }`
  return new Guard(configFrom(`models: { a: { kind: scripted } }\nensembles: { e: { strategy: deadline-fallback, models: [a] } }\nauth:\n  jwt: ${jwt}\n`).auth!, undefined, undefined, keySets)
}

/** A token of the right shape naming a key nobody published: what anyone can make up. */
const madeUp = (i: number): string => `${b64({ alg: 'RS256', kid: `made-up-${i}` })}.${b64({ sub: `m${i}`, exp: Math.floor(Date.now() / 1000) + 300 })}.AAAA`
const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url')

async function verdict(guard: Guard, token: string): Promise<Principal | { code: string; message: string }> {
  try {
    return await guard.check(`Bearer ${token}`, 'predict', 'e')
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err
    return { code: err.code, message: err.message }
  }
}

describe('an issuer that answers errors', () => {
  it('is asked once per cooldown however many made-up tokens arrive, each refused UNAUTHENTICATED', async () => {
    issuer.answer = 'error'
    const guard = guardFor()
    for (let i = 0; i < 200; i++) expect(await verdict(guard, madeUp(i))).toEqual({ code: 'UNAUTHENTICATED', message: 'the issuer\'s keys could not be fetched' })
    expect(issuer.fetches()).toBe(1)
    // Past the cooldown, once more (and only once).
    later(30_000)
    issuer.answer = 'keys'
    expect(await verdict(guard, await issuer.sign({ sub: 'back' }))).toMatchObject({ id: 'jwt:back' })
    for (let i = 200; i < 250; i++) expect(await verdict(guard, madeUp(i))).toMatchObject({ message: 'token signed by a key the issuer does not publish' })
    expect(issuer.fetches()).toBe(2)
  })

  it('says each failed fetch in the log (at most one per cooldown), with the endpoint and the error, and the first good one after', async () => {
    issuer.answer = 'error'
    const lines: [string, string, Record<string, unknown>][] = []
    const keySets = new KeySets()
    keySets.log = {
      info: (obj, msg) => lines.push(['info', msg, obj as Record<string, unknown>]),
      warn: (obj, msg) => lines.push(['warn', msg, obj as Record<string, unknown>]),
      error: (obj, msg) => lines.push(['error', msg, obj as Record<string, unknown>]),
    }
    const guard = guardFor('', keySets)
    for (let i = 0; i < 20; i++) await verdict(guard, madeUp(i))
    expect(lines).toEqual([['warn', expect.stringMatching(/^JWKS fetch failed: /), { jwks_url: issuer.url, error: expect.stringMatching(/answered 5\d\d/), last_good_set: false }]])
    later(30_000)
    issuer.answer = 'keys'
    expect(await verdict(guard, await issuer.sign({ sub: 'back' }))).toMatchObject({ id: 'jwt:back' })
    expect(lines.slice(1)).toEqual([['info', 'JWKS fetched again', { jwks_url: issuer.url }]])
  })

  it('after a failed fetch, the last good key set goes on verifying; an unknown kid is refused at once until the cooldown has passed', async () => {
    const guard = guardFor()
    expect(await verdict(guard, await issuer.sign({ sub: 'before' }))).toMatchObject({ id: 'jwt:before' })
    expect(issuer.fetches()).toBe(1)
    issuer.answer = 'error'
    later(600_000) // the set is past jwks_cache_s: fetched again, in the background, and that fails
    expect(await verdict(guard, await issuer.sign({ sub: 'during' }))).toMatchObject({ id: 'jwt:during' })
    const old = issuer.current
    await issuer.rotate('RS256', true)
    expect(await verdict(guard, await issuer.sign({ sub: 'rotated' }))).toEqual({ code: 'UNAUTHENTICATED', message: 'token signed by a key the issuer does not publish' })
    for (let i = 0; i < 20; i++) await verdict(guard, madeUp(i))
    expect(await verdict(guard, await issuer.sign({ sub: 'old-key' }, { key: old }))).toMatchObject({ id: 'jwt:old-key' })
    expect(issuer.fetches()).toBe(2)
    // The issuer is back and the cooldown over: the rotated key arrives with one fetch.
    issuer.answer = 'keys'
    later(30_000)
    expect(await verdict(guard, await issuer.sign({ sub: 'rotated-2' }))).toMatchObject({ id: 'jwt:rotated-2' })
    expect(issuer.fetches()).toBe(3)
  })
})

describe('an issuer that hangs', () => {
  it('holds made-up tokens for one shared fetch of at most jwks_timeout_ms, then refuses them at once', async () => {
    issuer.answer = 'hang'
    const guard = guardFor(', jwks_timeout_ms: 200')
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => verdict(guard, madeUp(i))))
    expect(new Set(first.map((v) => JSON.stringify(v)))).toEqual(new Set([JSON.stringify({ code: 'UNAUTHENTICATED', message: 'the issuer\'s keys could not be fetched' })]))
    expect(issuer.fetches()).toBe(1)
    // Within the cooldown: refused without asking the issuer, so without waiting for it.
    const refusals = Array.from({ length: 20 }, (_, i) => verdict(guard, madeUp(100 + i)))
    for (const refusal of await Promise.all(refusals)) expect(refusal).toMatchObject({ code: 'UNAUTHENTICATED' })
    expect(issuer.fetches()).toBe(1)
  })
})

describe('a reload while a fetch is in flight', () => {
  it('does not wait for that fetch, which asked before the reload: it fetches again, so a key withdrawn meanwhile stops verifying', async () => {
    const keySets = new KeySets()
    const settings = ', jwks_timeout_ms: 1000'
    const before = guardFor(settings, keySets)
    const token = await issuer.sign({ sub: 'withdrawn' })
    expect(await verdict(before, token)).toMatchObject({ id: 'jwt:withdrawn' })
    issuer.answer = 'hang'
    later(600_000) // past jwks_cache_s: the next lookup starts a background fetch, which hangs
    expect(await verdict(before, await issuer.sign({ sub: 'during' }))).toMatchObject({ id: 'jwt:during' })
    await issuer.rotate() // the old key withdrawn; the issuer answers again
    issuer.answer = 'keys'
    const reloaded = guardFor(settings, keySets)
    expect(await verdict(reloaded, token)).toEqual({ code: 'UNAUTHENTICATED', message: 'token signed by a key the issuer does not publish' })
    expect(await verdict(reloaded, await issuer.sign({ sub: 'rotated' }))).toMatchObject({ id: 'jwt:rotated' })
    expect(issuer.fetches()).toBe(3)
  })
})

describe('an issuer that answers more than a key set', () => {
  it('is not read past 1 MiB: its keys are not taken, and the tokens they sign are refused', async () => {
    issuer.answer = 'oversized'
    const guard = guardFor()
    expect(await verdict(guard, await issuer.sign({ sub: 'padded' }))).toEqual({ code: 'UNAUTHENTICATED', message: 'the issuer\'s keys could not be fetched' })
    issuer.answer = 'keys'
    later(30_000)
    expect(await verdict(guard, await issuer.sign({ sub: 'plain' }))).toMatchObject({ id: 'jwt:plain' })
    expect(issuer.fetches()).toBe(2)
  })
})
