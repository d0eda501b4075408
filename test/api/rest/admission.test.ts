// REST admission (server.max_in_flight) through fastify's inject, on a fake clock: the slot
// is taken before the body is read, refusals are immediate, and the limit is read live.
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
import { inferences } from '../../starter/scripted.ts'

const config = (maxInFlight: number) =>
  configFrom(`server: { max_in_flight: ${maxInFlight} }
models:
  slow: { kind: scripted, delay_ms: 150 }
ensembles:
  e: { strategy: deadline-fallback, models: [slow], budget_ms: { default: 500, max: 1000 } }
`)

let app: FastifyInstance
beforeEach(async () => {
  app = buildServer(config(1))
  await app.ready() // fastify's plugin loading runs on real timers
  await app.gateway.load()
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] })
})
afterEach(async () => {
  vi.useRealTimers()
  await app.close()
})

const predict = () => app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: { inputs: { x: [[0.5, 0.5]] } } })

/** Starts a predict and resolves once its model is running (so it holds its slot); `response` settles later. */
async function admitted(): Promise<{ response: Promise<{ statusCode: number }> }> {
  const started = new Promise((resolve) => inferences.once('infer', resolve))
  const response = predict().then((r) => r) // inject starts on then()
  await started
  return { response }
}

describe('admission (server.max_in_flight)', () => {
  it('refuses a predict over the limit at once with 503 OVERLOADED and Retry-After, and admits again after', async () => {
    const { response: first } = await admitted()
    const at = performance.now()
    const refused = await predict()
    expect(performance.now() - at).toBe(0) // refused at once (fake clock): not after the 150 ms the admitted one takes
    expect(refused.statusCode).toBe(503)
    expect(refused.headers['retry-after']).toBe('1')
    expect(refused.json()).toMatchObject({ code: 'OVERLOADED', message: 'more than 1 predicts in flight (server.max_in_flight)' })
    await vi.advanceTimersByTimeAsync(150)
    expect((await first).statusCode).toBe(200)
    const { response: again } = await admitted()
    await vi.advanceTimersByTimeAsync(150)
    expect((await again).statusCode).toBe(200)
    expect(app.gateway.admission.count).toBe(0)
  })

  it('does not count non-predict routes against the limit', async () => {
    const { response: first } = await admitted()
    expect((await app.inject('/v1/ensembles')).statusCode).toBe(200)
    expect((await app.inject('/healthz')).statusCode).toBe(200)
    await vi.advanceTimersByTimeAsync(150)
    expect((await first).statusCode).toBe(200)
  })

  it('applies a reloaded max_in_flight at once', async () => {
    const { response: first } = await admitted()
    expect((await predict()).statusCode).toBe(503)
    await app.gateway.reload(config(2))
    const { response: second } = await admitted()
    const third = await predict()
    expect(third.statusCode).toBe(503)
    expect(third.json()).toMatchObject({ message: 'more than 2 predicts in flight (server.max_in_flight)' })
    await vi.advanceTimersByTimeAsync(150)
    expect([(await first).statusCode, (await second).statusCode]).toEqual([200, 200])
  })
})
