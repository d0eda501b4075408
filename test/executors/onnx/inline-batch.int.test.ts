// Batching on the event loop, with a real model: a model pinned inline with `batching` runs
// the predicts of one turn as one stacked session.run, each answered with its own rows (the
// same answers scikit-learn gave), at most max_batch rows a run; a request decided before
// the turn's run is left out; describe() and /metrics show the batches.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Gateway } from '../../../src/gateway.ts'
import { inputFailure } from '../../../src/errors.ts'
import { tensorFromJson } from '../../../src/tensor/index.ts'
import type { MetricAttributes, MetricsSink, PredictResult } from '../../../src/types.ts'
import { configFrom, samples } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { writeFailingModel } from './hand-made-models.ts'

const cancer = samples('cancer')
let gateway: Gateway
const failing = join(tempDir('specserve-failing-model-'), 'failing.onnx')

beforeAll(async () => {
  writeFailingModel(failing)
  gateway = new Gateway(
    configFrom(`server: { max_in_flight: 64 }
models:
  failing: { kind: onnx, path: ${failing}, placement: inline, batching: { max_batch: 8 } }
  stacked: { kind: onnx, path: ../models/cancer_logreg.onnx, placement: inline, batching: { max_batch: 8 } }
  alone: { kind: onnx, path: ../models/cancer_logreg.onnx, placement: inline }
ensembles:
  stacked: { strategy: deadline-fallback, models: [stacked], budget_ms: { default: 5000, max: 5000 } }
  alone: { strategy: deadline-fallback, models: [alone], budget_ms: { default: 5000, max: 5000 } }
  failing: { strategy: deadline-fallback, models: [failing], budget_ms: { default: 5000, max: 5000 } }
`),
  )
  await gateway.load()
})
afterAll(async () => gateway?.close())

const request = (ensemble: string, i: number) => ({
  id: `r${i}`,
  ensemble,
  inputs: { input: tensorFromJson([cancer.rows[i % cancer.rows.length]!], gateway.ensemble(ensemble).inputs[0]!, inputFailure) },
})
/** `n` predicts started in the same turn of the event loop. */
const sameTurn = (ensemble: string, n: number): Promise<PredictResult[]> => Promise.all(Array.from({ length: n }, (_, i) => gateway.predict(request(ensemble, i))))
const label = (r: PredictResult): number => Number(r.outputs!.label!.data[0])

function batchCounters(model: string): Record<string, number> {
  const out: Record<string, number> = {}
  const sink: MetricsSink = {
    gauge: () => undefined,
    counter: (name, _help, points) => {
      for (const [, n] of points as (readonly [MetricAttributes, number])[]) out[name] = n
    },
  }
  gateway.model(model).executor.collect!(sink)
  return out
}

describe('batching a model pinned inline', () => {
  it('runs the predicts of one turn as one stacked run, each answered with its own rows', async () => {
    const before = gateway.model('stacked').executor.describe!() as { batching: { runs: number; batches: number } }
    const results = await sameTurn('stacked', 8)
    expect(results.map(label)).toEqual(Array.from({ length: 8 }, (_, i) => cancer.expected.cancer_logreg![i % cancer.rows.length]))
    expect(results.map((r) => r.models[0])).toEqual(results.map(() => expect.objectContaining({ status: 'ok', used: true, batch: 8 })))
    // The same probabilities as one run each (float32 sums may differ in the last place between batch sizes).
    const alone = await sameTurn('alone', 8)
    results.forEach((r, i) => {
      expect(r.outputs!.probabilities!.shape).toEqual([1, 2])
      Array.from(r.outputs!.probabilities!.data as Float32Array).forEach((p, k) => expect(p).toBeCloseTo(Number(alone[i]!.outputs!.probabilities!.data[k]), 6))
    })
    expect(alone.every((r) => r.models[0]!.batch === undefined)).toBe(true)
    const after = gateway.model('stacked').executor.describe!() as { placement: { current: string }; batching: Record<string, unknown> }
    expect(after.placement.current).toBe('inline')
    expect(after.batching).toMatchObject({ max_batch: 8, max_queue_delay_ms: 0, runs: before.batching.runs + 1, batches: before.batching.batches + 1 })
  })

  it('cuts a turn into runs of at most max_batch rows', async () => {
    const results = await sameTurn('stacked', 11)
    expect(results.map((r) => r.models[0]!.batch)).toEqual([...new Array(8).fill(8), 3, 3, 3])
    expect(results.map(label)).toEqual(Array.from({ length: 11 }, (_, i) => cancer.expected.cancer_logreg![i % cancer.rows.length]))
  })

  it('leaves out a request cancelled before the turn runs', async () => {
    const runs = Array.from({ length: 4 }, (_, i) => gateway.start(request('stacked', i)))
    runs[1]!.cancel()
    const results = await Promise.all(runs.map((r) => r.result))
    expect(results[1]!.error?.code).toBe('CANCELLED')
    expect([0, 2, 3].map((i) => results[i]!.models[0]!.batch)).toEqual([3, 3, 3])
  })

  it('counts batches and the requests they carried in /metrics', async () => {
    const before = batchCounters('stacked')
    await sameTurn('stacked', 5)
    const after = batchCounters('stacked')
    expect(after.specserve_model_batches! - before.specserve_model_batches!).toBe(1)
    expect(after.specserve_model_batched_requests! - before.specserve_model_batched_requests!).toBe(5)
  })

  it('runs a request of more than max_batch rows alone, and batches the rest of its turn', async () => {
    const nine = Array.from({ length: 9 }, (_, i) => cancer.rows[i % cancer.rows.length]!)
    const big = { id: 'big', ensemble: 'stacked', inputs: { input: tensorFromJson(nine, gateway.ensemble('stacked').inputs[0]!, inputFailure) } }
    const [alone, ...rest] = await Promise.all([gateway.predict(big), gateway.predict(request('stacked', 0)), gateway.predict(request('stacked', 1))])
    expect(alone!.models[0]!.batch).toBeUndefined()
    expect(Array.from(alone!.outputs!.label!.data as BigInt64Array, Number)).toEqual(nine.map((_, i) => cancer.expected.cancer_logreg![i % cancer.rows.length]))
    expect(rest.map((r) => r.models[0]!.batch)).toEqual([2, 2])
  })

  it("runs each request alone when their stacked run fails: one request's input fails only its own, and counts no batch", async () => {
    // Column 3 at -1 makes the model's run fail (hand-made-models.ts); columns 0-2 pick the label.
    const row = (i: number, poison: boolean) => ({ id: `f${i}`, ensemble: 'failing', inputs: { input: { datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.from([i % 3 === 0 ? 1 : 0, i % 3 === 1 ? 1 : 0, i % 3 === 2 ? 1 : 0, poison ? -1 : 0]) } } })
    const before = batchCounters('failing')
    const results = await Promise.all([0, 1, 2, 3].map((i) => gateway.predict(row(i, i === 1))))
    expect(results.map((r) => r.error?.code ?? 'ok')).toEqual(['ok', 'ALL_MODELS_FAILED', 'ok', 'ok'])
    expect(results[1]!.models[0]!.error?.code).toBe('MODEL_FAILED')
    expect([0, 2, 3].map((i) => label(results[i]!))).toEqual([0, 2, 0])
    expect([0, 2, 3].map((i) => results[i]!.models[0]!.batch)).toEqual([undefined, undefined, undefined]) // each ran alone
    const after = batchCounters('failing')
    expect(after.specserve_model_batches).toBe(before.specserve_model_batches)
    const next = await Promise.all([0, 1, 2, 3].map((i) => gateway.predict(row(i, false))))
    expect(next.map((r) => r.models[0]!.batch)).toEqual([4, 4, 4, 4])
    expect(batchCounters('failing').specserve_model_batches).toBe(before.specserve_model_batches! + 1)
  })

  it('refuses a queue delay on a model pinned inline, at config time', () => {
    expect(() =>
      configFrom(`models:
  m: { kind: onnx, path: ../models/cancer_logreg.onnx, placement: inline, batching: { max_batch: 4, max_queue_delay_ms: 2 } }
ensembles:
  m: { strategy: deadline-fallback, models: [m] }
`),
    ).toThrow(/never holds a request back/)
  })
})
