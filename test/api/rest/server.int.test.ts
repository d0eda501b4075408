import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, demoConfig, samples } from '../../helpers.ts'
import '../../starter/scripted.ts' // registers kind: scripted

let app: FastifyInstance
const cancer = samples('cancer')
const wine = samples('wine')

beforeAll(async () => {
  app = buildServer(demoConfig({ server: { body_limit_bytes: 65536 } }))
})
afterAll(async () => app.close())

const predict = (ensemble: string, body: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: body as object, headers })

describe('REST API', () => {
  it('is live at once, and ready only after every model is loaded and warmed', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' })
    const before = await app.inject('/readyz')
    expect(before.statusCode).toBe(503)
    expect(before.json()).toEqual({ ready: false, status: 'loading' })
    await app.gateway.load()
    expect((await app.inject('/readyz')).json()).toEqual({ ready: true, status: 'ready' })
  })

  it('lists the demo ensembles', async () => {
    const res = await app.inject('/v1/ensembles')
    expect(res.statusCode).toBe(200)
    const names = (res.json() as { ensembles: { name: string }[] }).ensembles.map((e) => e.name)
    expect(names).toEqual(['cancer', 'cancer-straggler', 'wine', 'digits', 'diabetes'])
  })

  it('describes an ensemble with its strategy, models, budget, inputs and outputs', async () => {
    const body = (await app.inject('/v1/ensembles/wine')).json()
    expect(body).toMatchObject({
      name: 'wine',
      strategy: { name: 'majority-vote', quorum: 'majority', on_no_majority: 'plurality' },
      models: [{ name: 'wine-logreg' }, { name: 'wine-tree' }, { name: 'wine-knn' }],
      budget_ms: { default: 50, max: 200 },
      select: { policy: 'all' },
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 13] }],
    })
  })

  it('describes member selection as configured', async () => {
    const selective = buildServer(
      configFrom(`
models:
  a: { kind: scripted, delay_ms: 1, label: 1 }
  b: { kind: scripted, delay_ms: 2, label: 1 }
ensembles:
  aware: { strategy: deadline-fallback, models: [a, b], select: latency-aware }
  adaptive: { strategy: majority-vote, models: [a, b], select: { policy: adaptive, accuracy_target: 0.995, explore: 0.1 } }
`),
    )
    try {
      await selective.gateway.load()
      expect((await selective.inject('/v1/ensembles/aware')).json().select).toEqual({ policy: 'latency-aware' })
      expect((await selective.inject('/v1/ensembles/adaptive')).json().select).toEqual({ policy: 'adaptive', accuracy_target: 0.995, explore: 0.1 })
    } finally {
      await selective.close()
    }
  })

  it('answers a predict with outputs, decision, budget, elapsed and one annotation per model', async () => {
    // The ensemble's cap, not its 50 ms default: a shared CI box can stall longer than that.
    const res = await predict('cancer', { inputs: { input: [cancer.rows[0]] }, id: 'req-1', budget_ms: 200 })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({ id: 'req-1', ensemble: 'cancer', strategy: 'deadline-fallback', budget_ms: 200 })
    expect(body.elapsed_ms).toBeGreaterThan(0)
    expect(body.elapsed_ms).toBeLessThan(200)
    expect(body.models.map((m: { name: string }) => m.name)).toEqual(['cancer-logreg', 'cancer-mlp'])
    const chosen = body.models.find((m: { used: boolean }) => m.used)
    expect(chosen).toMatchObject({ name: body.decision.chosen, status: 'ok', version: '1' })
    const expected = body.decision.chosen === 'cancer-mlp' ? cancer.expected.cancer_mlp : cancer.expected.cancer_logreg
    expect(body.outputs.label).toEqual([expected![0]])
    expect(body.outputs.probabilities[0]).toHaveLength(2)
  })

  it('accepts {shape, datatype, data} inputs and the x-budget-ms header', async () => {
    const rows = wine.rows
    const res = await predict('wine', { inputs: { input: { shape: [rows.length, 13], datatype: 'FP32', data: rows.flat() } } }, { 'x-budget-ms': '190' })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.budget_ms).toBe(190)
    expect(body.decision.votes).not.toBeNull()
    expect(Object.values(body.decision.votes as Record<string, number>).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(2)
    expect(body.outputs.label).toHaveLength(rows.length)
  })

  it('takes the median of three regressors', async () => {
    const body = (await predict('diabetes', { inputs: { input: [samples('diabetes').rows[0]] }, budget_ms: 200 })).json()
    const expected = Object.values(samples('diabetes').expected).map((v) => v[0]!).sort((a, b) => a - b)
    expect(body.decision.reason).toBe('median')
    expect(body.outputs.variable[0][0]).toBeCloseTo(expected[1]!, 3)
  })

  it('answers a straggler ensemble by its 20 ms deadline with the fallback', async () => {
    const body = (await predict('cancer-straggler', { inputs: { input: [cancer.rows[0]] } })).json()
    expect(body.decision.chosen).toBe('cancer-logreg')
    // Decided at its deadline, not after the straggler's run (40–100 ms by the CPU; a starved box fires the timer late).
    expect(body.elapsed_ms).toBeLessThan(80)
    expect(['timeout', 'skipped']).toContain(body.models[0].status)
  })

  it('reports per-model stats', async () => {
    const body = (await app.inject('/v1/models/cancer-logreg')).json()
    expect(body).toMatchObject({ name: 'cancer-logreg', version: '1', kind: 'onnx', ensembles: ['cancer', 'cancer-straggler'] })
    expect(body.stats.count).toBeGreaterThanOrEqual(2)
    expect(body.stats).toHaveProperty('wins')
    expect(body.stats.duration_ms.min).toBeLessThanOrEqual(body.stats.duration_ms.max)
    expect((await app.inject('/v1/models/nope')).statusCode).toBe(404)
  })

  describe('bad input: a clear 4xx with a stable code, and the server keeps serving', () => {
    const row = cancer.rows[0]!
    const cases: [string, () => ReturnType<typeof predict>, number, string, RegExp?][] = [
      ['malformed JSON', () => app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: '{"inputs": [', headers: { 'content-type': 'application/json' } }), 400, 'BAD_REQUEST'],
      ['a body that is not an object', () => predict('cancer', [1, 2]), 400, 'BAD_REQUEST'],
      ['missing inputs', () => predict('cancer', { inputs: {} }), 400, 'BAD_INPUT', /missing input "input"/],
      ['no inputs field', () => predict('cancer', { budget_ms: 10 }), 400, 'BAD_INPUT'],
      ['an unknown input name', () => predict('cancer', { inputs: { input: [row], extra: [[1]] } }), 400, 'BAD_INPUT', /unknown input "extra"/],
      ['a wrong dtype', () => predict('cancer', { inputs: { input: { shape: [1, 30], datatype: 'INT64', data: row } } }), 400, 'BAD_INPUT', /datatype INT64 given, model declares FP32/],
      ['a wrong shape', () => predict('cancer', { inputs: { input: [row.slice(0, 29)] } }), 400, 'BAD_INPUT', /shape \[1, 29\] does not match declared \[-1, 30\]/],
      ['a ragged array', () => predict('cancer', { inputs: { input: [row, row.slice(1)] } }), 400, 'BAD_INPUT', /ragged/],
      ['non-numeric data', () => predict('cancer', { inputs: { input: [[...row.slice(1), 'x']] } }), 400, 'BAD_INPUT', /element 29 is "x", not a number/],
      ['data that does not fill the shape', () => predict('cancer', { inputs: { input: { shape: [2, 30], data: row } } }), 400, 'BAD_INPUT'],
      ['an unknown ensemble', () => predict('nope', { inputs: {} }), 404, 'UNKNOWN_ENSEMBLE'],
      ['a zero budget', () => predict('cancer', { inputs: { input: [row] }, budget_ms: 0 }), 400, 'BAD_BUDGET'],
      ['a negative budget', () => predict('cancer', { inputs: { input: [row] }, budget_ms: -1 }), 400, 'BAD_BUDGET'],
      ['a non-numeric budget', () => predict('cancer', { inputs: { input: [row] }, budget_ms: 'soon' }), 400, 'BAD_BUDGET'],
      ['a non-numeric budget header', () => predict('cancer', { inputs: { input: [row] } }, { 'x-budget-ms': 'soon' }), 400, 'BAD_BUDGET'],
      ['a budget over the cap', () => predict('cancer', { inputs: { input: [row] }, budget_ms: 201 }), 400, 'BAD_BUDGET', /cap of 200/],
      ['a body over the limit', () => predict('cancer', { inputs: { input: new Array(3000).fill(row) } }), 413, 'PAYLOAD_TOO_LARGE'],
      ['an unknown route', () => app.inject({ method: 'GET', url: '/v1/nothing' }), 404, 'NOT_FOUND'],
      // A 60 KB body nested 30,000 deep used to overflow the flattener's stack: 500 INTERNAL.
      ['an array nested 30,000 deep', () => app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: `{"inputs":{"input":${'['.repeat(30_000)}1${']'.repeat(30_000)}}}`, headers: { 'content-type': 'application/json' } }), 400, 'BAD_INPUT', /^input "input": arrays nested more than 64 deep$/],
      ['a 5,000-dimension shape (not echoed in full)', () => predict('cancer', { inputs: { input: { shape: new Array(5000).fill(1), data: row } } }), 400, 'BAD_INPUT', /^input "input": shape has 5000 dimensions, more than 64$/],
    ]
    for (const [what, send, status, code, message] of cases) {
      it(`${what} → ${status} ${code}`, async () => {
        const res = await send()
        expect(res.statusCode).toBe(status)
        expect(res.json().code).toBe(code)
        if (message) expect(res.json().message).toMatch(message)
        expect((await predict('cancer', { inputs: { input: [row] }, budget_ms: 200 })).statusCode).toBe(200)
      })
    }

    it('a budget too small to run anything → 504 DEADLINE_EXCEEDED with annotations', async () => {
      const res = await predict('cancer', { inputs: { input: [row] }, budget_ms: 0.001 })
      expect(res.statusCode).toBe(504)
      const body = res.json()
      expect(body.code).toBe('DEADLINE_EXCEEDED')
      expect(body.models).toHaveLength(2)
      for (const m of body.models) expect(['timeout', 'skipped']).toContain(m.status)
      expect((await predict('cancer', { inputs: { input: [row] }, budget_ms: 200 })).statusCode).toBe(200)
    })
  })
})

describe('REST API on a real socket', () => {
  it('serves predicts over HTTP', async () => {
    const server = buildServer(demoConfig())
    try {
      await server.gateway.load()
      const address = await server.listen({ host: '127.0.0.1', port: 0 })
      const res = await fetch(`${address}/v1/ensembles/digits/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: { input: [samples('digits').rows[0]] } }),
      })
      expect(res.status).toBe(200)
      const body = (await res.json()) as { strategy: string; decision: { reason: string; chosen: string } }
      expect(body.strategy).toBe('majority-vote')
      expect(body.decision.reason).toBe('soft')
    } finally {
      await server.close()
    }
  })
})
