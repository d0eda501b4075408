// REST admission (server.max_in_flight) on a real socket: while the admitted predict runs,
// an excess one gets its 503 at once (refused as it arrives, before fastify routes it, or in
// the route when the raw URL hid it); the limit is read live, so a reload applies it at once.
// Slow bodies, and predicts whose bodies arrive after the slots filled: admission-slow-body.
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
import { inferences } from '../../starter/scripted.ts'

const config = (maxInFlight: number) =>
  configFrom(`server: { max_in_flight: ${maxInFlight} }
models:
  slow: { kind: scripted, delay_ms: 1000 }
ensembles:
  e: { strategy: deadline-fallback, models: [slow], budget_ms: { default: 3000, max: 5000 } }
`)

let app: FastifyInstance
let url: string
beforeEach(async () => {
  app = buildServer(config(1))
  await app.gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
})
afterEach(async () => app.close())

const predict = () => fetch(`${url}/v1/ensembles/e/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs":{"x":[[0.5,0.5]]}}' })

/** An Open Inference Protocol infer on `path` (spelled as given). */
const infer = (path: string) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[0.5,0.5]}]}' })

/** Starts a predict and resolves once its model is running (so it holds its slot); `response` settles later. */
async function admitted(): Promise<{ response: Promise<Response>; done: () => boolean }> {
  const started = new Promise((resolve) => inferences.once('infer', resolve))
  let finished = false
  const response = predict().finally(() => (finished = true))
  await started
  return { response, done: () => finished }
}

describe('admission (server.max_in_flight)', () => {
  it('refuses a predict over the limit with 503 OVERLOADED and Retry-After while the admitted one runs, and admits again after', async () => {
    const first = await admitted()
    const refused = await predict()
    expect(first.done()).toBe(false) // refused at once, not after the admitted predict's 1,000 ms
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(await refused.json()).toEqual({ code: 'OVERLOADED', message: 'more than 1 predicts in flight (server.max_in_flight)' })
    expect(app.gateway.ensembles.get('e')!.requestStats.outcomes.get('OVERLOADED')).toBe(1)
    expect((await first.response).status).toBe(200)
    expect((await predict()).status).toBe(200)
    expect(app.gateway.admission.count).toBe(0)
  })

  it('refuses an Open Inference Protocol infer in that protocol\'s error shape', async () => {
    const first = await admitted()
    const refused = await infer('/v2/models/e/infer')
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(await refused.json()).toEqual({ error: 'more than 1 predicts in flight (server.max_in_flight)', code: 'OVERLOADED' })
    expect((await first.response).status).toBe(200)
  })

  it('counts a predict however its URL is spelled: percent-encoded, the router decodes it to the same route', async () => {
    const first = await admitted()
    const native = await fetch(`${url}/v1/ensembles/e/predic%74`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs":{"x":[[0.5,0.5]]}}' })
    expect(native.status).toBe(503)
    expect(await native.json()).toEqual({ code: 'OVERLOADED', message: 'more than 1 predicts in flight (server.max_in_flight)' })
    const oip = await infer('/v2/models/%65/infer')
    expect(oip.status).toBe(503)
    expect(oip.headers.get('retry-after')).toBe('1')
    expect(await oip.json()).toEqual({ error: 'more than 1 predicts in flight (server.max_in_flight)', code: 'OVERLOADED' })
    expect(first.done()).toBe(false)
    expect((await first.response).status).toBe(200)
    const admittedLate = await fetch(`${url}/v1/ensembles/e/predic%74`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs":{"x":[[0.5,0.5]]}}' })
    expect(admittedLate.status).toBe(200)
    expect(app.gateway.admission.count).toBe(0) // its slot was freed with its response
  })

  it('does not count non-predict routes against the limit', async () => {
    const first = await admitted()
    expect((await fetch(`${url}/v1/ensembles`)).status).toBe(200)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    expect(first.done()).toBe(false)
    expect((await first.response).status).toBe(200)
  })

  it('applies a reloaded max_in_flight at once', async () => {
    const first = await admitted()
    expect((await predict()).status).toBe(503)
    await app.gateway.reload(config(2))
    const second = await admitted()
    const third = await predict()
    expect(third.status).toBe(503)
    expect(await third.json()).toMatchObject({ message: 'more than 2 predicts in flight (server.max_in_flight)' })
    expect([(await first.response).status, (await second.response).status]).toEqual([200, 200])
  })
})
