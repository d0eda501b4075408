// The issuer's key set across reloads, on a guarded gateway's REST listener with a real JWKS
// endpoint on a loopback port: a reload while the issuer is down keeps the last good keys
// (tokens go on verifying), a reload while it is up fetches the set again (a key the issuer
// withdrew stops verifying), and a reload naming another jwks_url starts from nothing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { configFrom } from '../helpers.ts'
import { guardedYaml } from './fixture.ts'
import { AUDIENCE, ISSUER, startIssuer, type Issuer } from './issuer.ts'
import { serve, type Served } from './served.ts'

let issuer: Issuer
let served: Served

const yamlFor = (jwksUrl: string): string => guardedYaml({ jwt: `{ jwks_url: "${jwksUrl}", issuer: "${ISSUER}", audience: ${AUDIENCE}, jwks_cooldown_s: 30 }` })

beforeEach(async () => {
  issuer = await startIssuer()
  served = await serve(yamlFor(issuer.url))
})
afterEach(async () => {
  await served.close()
  await issuer.close()
})

async function predict(token: string): Promise<{ status: number; body: unknown }> {
  const res = await served.app.inject({ method: 'POST', url: '/v1/ensembles/g/predict', payload: { inputs: { x: [[0.5, 0.5]] } }, headers: { authorization: `Bearer ${token}` } })
  return { status: res.statusCode, body: res.json() }
}

async function reload(yaml: string): Promise<void> {
  const report = await served.gateway.reload(configFrom(yaml))
  expect(report.restartNeeded).toEqual([])
}

describe('the JWKS across reloads', () => {
  it('a reload while the issuer answers errors keeps the last good key set: a token it verified goes on verifying', async () => {
    const token = await issuer.sign({ sub: 'through-outage' })
    expect((await predict(token)).status).toBe(200)
    expect(issuer.fetches()).toBe(1)
    issuer.answer = 'error'
    await reload(yamlFor(issuer.url))
    // The reload asks the issuer once (in case a key was withdrawn), gets 503, and keeps the set it has.
    expect(await predict(token)).toMatchObject({ status: 200 })
    expect(issuer.fetches()).toBe(2)
    // A token it has not seen, signed with a key of that set, verifies too; the issuer is not asked again within the cooldown.
    expect((await predict(await issuer.sign({ sub: 'new-during-outage' }))).status).toBe(200)
    expect(issuer.fetches()).toBe(2)
  })

  it('a reload while the issuer is up fetches the set again: a key it withdrew stops verifying', async () => {
    const token = await issuer.sign({ sub: 'withdrawn' })
    expect((await predict(token)).status).toBe(200)
    await issuer.rotate() // the old key is no longer published
    await reload(yamlFor(issuer.url))
    expect(await predict(token)).toEqual({ status: 401, body: { code: 'UNAUTHENTICATED', message: 'token signed by a key the issuer does not publish' } })
    expect((await predict(await issuer.sign({ sub: 'rotated' }))).status).toBe(200)
  })

  it('a reload naming another jwks_url starts with no keys: the old issuer\'s set is not carried over', async () => {
    const token = await issuer.sign({ sub: 'moved' })
    expect((await predict(token)).status).toBe(200)
    const other = await startIssuer()
    try {
      other.answer = 'error'
      await reload(yamlFor(other.url))
      expect(await predict(token)).toEqual({ status: 401, body: { code: 'UNAUTHENTICATED', message: 'the issuer\'s keys could not be fetched' } })
      expect(other.fetches()).toBe(1)
    } finally {
      await other.close()
    }
  })
})
