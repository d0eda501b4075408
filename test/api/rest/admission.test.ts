import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
import { once } from 'node:events'
import { inferences } from '../../starter/scripted.ts'

let app: FastifyInstance
beforeAll(async () => {
  app = buildServer(
    configFrom(`server: { max_in_flight: 1 }
models:
  slow: { kind: scripted, delay_ms: 150 }
ensembles:
  e: { strategy: deadline-fallback, models: [slow], budget_ms: { default: 500, max: 1000 } }
`),
  )
  await app.gateway.load()
})
afterAll(async () => app.close())

const predict = () => app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: { inputs: { x: [[0.5, 0.5]] } } })

describe('admission (server.max_in_flight)', () => {
  it('refuses a predict over the limit at once with 503 OVERLOADED and Retry-After, and admits again after', async () => {
    const admitted = once(inferences, 'infer')
    const first = predict().then((r) => r) // inject starts on then()
    await admitted
    const started = performance.now()
    const refused = await predict()
    expect(performance.now() - started).toBeLessThan(100) // not after the 150 ms the admitted one takes
    expect(refused.statusCode).toBe(503)
    expect(refused.headers['retry-after']).toBe('1')
    expect(refused.json()).toMatchObject({ code: 'OVERLOADED' })
    expect((await first).statusCode).toBe(200)
    expect((await predict()).statusCode).toBe(200)
  })

  it('does not count non-predict routes against the limit', async () => {
    const admitted = once(inferences, 'infer')
    const first = predict().then((r) => r)
    await admitted
    expect((await app.inject('/v1/ensembles')).statusCode).toBe(200)
    expect((await app.inject('/healthz')).statusCode).toBe(200)
    expect((await first).statusCode).toBe(200)
  })
})
