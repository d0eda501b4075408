// REST predict slots (server.max_in_flight) while a JWT's verification waits on the issuer's
// JWKS, over real connections to a guarded gateway: a caller the guard has not let through
// must not hold a slot while it waits, so made-up tokens sent while the issuer hangs cannot
// push real callers into 503 OVERLOADED; they are answered 401 once the fetch fails. A real
// token that waited takes a slot again in its route and is served.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Guard } from '../../src/security/guard.ts'
import { bearer, guardedYaml, KEYS } from './fixture.ts'
import { AUDIENCE, ISSUER, startIssuer, type Issuer } from './issuer.ts'
import { serve, type Served } from './served.ts'

const MAX_IN_FLIGHT = 2

let issuer: Issuer
let issuerOpen: boolean
let served: Served
/** Resolves once this many guard checks have gone asynchronous (a JWT waiting for its verification). */
let waitingChecks: (n: number) => Promise<void>

beforeEach(async () => {
  issuer = await startIssuer()
  issuerOpen = true
  served = await serve(
    guardedYaml({
      jwt: `{ jwks_url: "${issuer.url}", issuer: "${ISSUER}", audience: ${AUDIENCE}, jwks_timeout_ms: 30000 }`,
      extra: `server: { max_in_flight: ${MAX_IN_FLIGHT} }\n`,
    }),
  )
  const check = Guard.prototype.check
  let waiting = 0
  const waiters: { n: number; resolve: () => void }[] = []
  vi.spyOn(Guard.prototype, 'check').mockImplementation(function (this: Guard, ...args: Parameters<Guard['check']>) {
    const verdict = check.apply(this, args)
    if (verdict instanceof Promise) {
      waiting++
      for (const w of waiters) if (waiting >= w.n) w.resolve()
    }
    return verdict
  })
  waitingChecks = (n) => (waiting >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })))
})
afterEach(async () => {
  vi.restoreAllMocks()
  if (issuerOpen) await issuer.close()
  await served.close()
})

/** A token of the right shape naming a key nobody published: what anyone can make up. */
const madeUp = (i: number): string => `${b64({ alg: 'RS256', kid: `made-up-${i}` })}.${b64({ sub: `m${i}`, exp: Math.floor(Date.now() / 1000) + 300 })}.AAAA`
const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url')

async function predict(authorization: { authorization: string }): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${served.restPort}/v1/ensembles/g/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authorization },
    body: JSON.stringify({ inputs: { x: [[0.5, 0.5]] } }),
  })
  return { status: res.status, body: await res.json() }
}

describe('REST predict slots while a JWT waits on the issuer (max_in_flight: 2)', () => {
  it('made-up tokens waiting on a JWKS fetch that never ends hold no slot: an API-key predict is served meanwhile; they are refused 401 when the fetch fails', async () => {
    issuer.answer = 'hang'
    const attacks = Array.from({ length: MAX_IN_FLIGHT }, (_, i) => predict(bearer(madeUp(i))))
    await waitingChecks(MAX_IN_FLIGHT)
    expect(await predict(bearer(KEYS.debugger))).toMatchObject({ status: 200, body: { ensemble: 'g' } })
    expect(served.gateway.admission.count).toBe(0) // the waiting ones hold none
    expect(issuer.fetches()).toBe(1) // one fetch, shared by every waiting token
    issuerOpen = false
    await issuer.close() // the hanging fetch fails
    for (const refused of await Promise.all(attacks)) expect(refused).toEqual({ status: 401, body: { code: 'UNAUTHENTICATED', message: 'the issuer\'s keys could not be fetched' } })
    expect(served.gateway.admission.count).toBe(0)
  })

  it('a real token seen for the first time takes a slot again in its route once verified, is served, and frees it', async () => {
    expect(await predict(bearer(await issuer.sign({ sub: 'first-time' })))).toMatchObject({ status: 200, body: { ensemble: 'g' } })
    expect(served.gateway.admission.count).toBe(0)
  })
})
