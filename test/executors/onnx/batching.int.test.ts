// Dynamic batching with a real model in a real worker: requests waiting together run as
// one session.run and each gets its own rows' answer; a batch never waits past what its
// earliest deadline allows; a cancelled request leaves its batch; the gateway annotates
// the batch size and describes the model's batching.
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { Worker } from 'node:worker_threads'
import { BATCH_ROWS, type BatchedOutputs } from '../../../src/executors/types.ts'
import { Gateway } from '../../../src/gateway.ts'
import { inputFailure } from '../../../src/errors.ts'
import { tensorFromJson, type Tensor, type TensorMap } from '../../../src/tensor/index.ts'
import { configFrom, root, samples } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { writeFailingModel } from './hand-made-models.ts'
import { later, sampleRows, usePool } from './pool-helpers.ts'

const digits = samples('digits')
const wide = join(root, 'models', 'digits_wide.onnx')
const one = (i: number): TensorMap => sampleRows('digits', 1, i)
const label = (out: TensorMap): number => Number((out.label as Tensor).data[0])

const pools = usePool()

describe('dynamic batching in the worker pool', () => {
  it('runs requests that wait together as one batch and answers each with its own rows', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 64 })
    await pool.register('wide', wide, { batching: { maxBatch: 8, maxDelayMs: 10_000 } })
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    // Eight requests fill the batch: it goes at once, in one message, without waiting 10 s.
    const outs = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.run('wide', one(i), new AbortController().signal, later())))
    expect(outs.map(label)).toEqual(Array.from({ length: 8 }, (_, i) => digits.expected.digits_wide![i % digits.rows.length]))
    expect(outs.map((o) => (o as BatchedOutputs)[BATCH_ROWS])).toEqual(new Array(8).fill(8))
    expect(outs[3]!.probabilities!.shape).toEqual([1, 10])
    const runs = posted.mock.calls.filter(([msg]) => (msg as { type: string }).type === 'run')
    expect(runs).toHaveLength(1)
    expect(pool.laneStats('wide')).toMatchObject({ runs: 1, batches: 1, batchedRequests: 8 })
  })

  it('sends a lone request while its deadline can still be met, however long max_queue_delay_ms is', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 64 })
    await pool.register('wide', wide, { batching: { maxBatch: 32, maxDelayMs: 60_000 } })
    // A few lone requests first, as traffic would: the pool measures its hop and the model's time
    // alone. Each waits for company until near its deadline: 200 ms leaves room for a late wake-up.
    for (let i = 0; i < 5; i++) await pool.run('wide', one(i), new AbortController().signal, later(200))
    const sentAt: number[] = []
    const post = Worker.prototype.postMessage
    vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, msg: unknown, transfer?: Parameters<Worker["postMessage"]>[1]) {
      if ((msg as { type: string }).type === 'run') sentAt.push(performance.now())
      post.call(this, msg, transfer)
    })
    const asked = performance.now()
    const deadline = later(200)
    const outcome = await pool.run('wide', one(0), new AbortController().signal, deadline).then(
      (out) => ({ out, at: performance.now() }),
      (err: unknown) => ({ err, at: performance.now() }),
    )
    if ('err' in outcome) {
      // A starved box fired its wake-up later than the margin allows: the job then has less
      // time left than a run takes and is refused, but still by its deadline, not after 60 s.
      expect(outcome.err).toMatchObject({ code: 'WOULD_MISS_DEADLINE' })
      expect(sentAt).toHaveLength(0)
      expect(outcome.at - asked).toBeGreaterThan(100)
      expect(outcome.at).toBeLessThan(deadline + 100) // around its deadline (the wake-up was late), not after 60 s
      return
    }
    expect(label(outcome.out)).toBe(digits.expected.digits_wide![0])
    expect((outcome.out as BatchedOutputs)[BATCH_ROWS]).toBeUndefined() // it ran alone
    // It waited for others to join (most of its 200 ms), and left around its deadline, not
    // after 60 s. How far ahead of the deadline is the scheduling's arithmetic, tested with
    // exact clocks in batch.test.ts (waitLeft): here a starved box fires the wake-up late.
    expect(sentAt).toHaveLength(1)
    expect(sentAt[0]! - asked).toBeGreaterThan(100)
    expect(sentAt[0]! - asked).toBeLessThan(1000)
  })

  it('leaves a cancelled request out of the batch it was waiting for', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 64 })
    await pool.register('wide', wide, { batching: { maxBatch: 3, maxDelayMs: 60_000 } })
    const cancelled = new AbortController()
    const kept = pool.run('wide', one(0), new AbortController().signal, later())
    const dropped = pool.run('wide', one(1), cancelled.signal, later())
    cancelled.abort(new Error('decided'))
    await expect(dropped).rejects.toThrow('decided')
    const more = [pool.run('wide', one(1), new AbortController().signal, later()), pool.run('wide', one(2), new AbortController().signal, later())]
    const outs = await Promise.all([kept, ...more])
    expect(outs.map(label)).toEqual([0, 1, 2].map((i) => digits.expected.digits_wide![i]))
    expect(outs.map((o) => (o as BatchedOutputs)[BATCH_ROWS])).toEqual([3, 3, 3])
  })
  it("runs each request alone when their stacked run fails: one request's input fails only its own", async () => {
    const model = join(tempDir('specserve-failing-model-'), 'failing.onnx')
    writeFailingModel(model)
    const pool = pools.open({ workers: 1, queueLimit: 64 })
    await pool.register('failing', model, { batching: { maxBatch: 4, maxDelayMs: 60_000 } })
    // Column 3 at -1 makes the model's run fail (hand-made-models.ts); columns 0-2 pick the label.
    const row = (i: number, poison: boolean): TensorMap => ({ input: { datatype: 'FP32', shape: [1, 4], data: Float32Array.from([i === 0 ? 1 : 0, i === 1 ? 1 : 0, i === 2 ? 1 : 0, poison ? -1 : 0]) } })
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    const outcomes = await Promise.allSettled([0, 1, 2, 0].map((k, i) => pool.run('failing', row(k, i === 1), new AbortController().signal, later())))
    expect(posted.mock.calls.filter(([msg]) => (msg as { type: string }).type === 'run')).toHaveLength(1) // they did wait together
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'MODEL_FAILED' })
    const answered = [0, 2, 3].map((i) => (outcomes[i] as PromiseFulfilledResult<TensorMap>).value)
    expect(answered.map(label)).toEqual([0, 2, 0])
    expect(answered.map((o) => (o as BatchedOutputs)[BATCH_ROWS])).toEqual([undefined, undefined, undefined]) // each ran alone
    expect(pool.laneStats('failing')).toMatchObject({ runs: 3, batches: 0 })
  })
})

describe('batching through the gateway', () => {
  it('annotates each model answer with the batch it ran in and describes the batching', async () => {
    const gateway = new Gateway(
      configFrom(`executors: { onnx_workers: 1 }
models:
  wide: { kind: onnx, path: ../models/digits_wide.onnx, batching: { max_batch: 4, max_queue_delay_ms: 1000 } }
ensembles:
  wide: { strategy: deadline-fallback, models: [wide], budget_ms: { default: 10000, max: 10000 } }
`),
    )
    try {
      await gateway.load()
      const spec = gateway.ensemble('wide').inputs[0]!
      const results = await Promise.all(
        [0, 1, 2, 3].map((i) => gateway.predict({ id: `b${i}`, ensemble: 'wide', inputs: { input: tensorFromJson([digits.rows[i % digits.rows.length]!], spec, inputFailure) } })),
      )
      expect(results.map((r) => r.models[0])).toEqual(results.map(() => expect.objectContaining({ status: 'ok', used: true, batch: 4 })))
      expect(results.map((r) => Number(r.outputs!.label!.data[0]))).toEqual([0, 1, 2, 3].map((i) => digits.expected.digits_wide![i % digits.rows.length]))
      const described = gateway.model('wide').executor.describe!() as Record<string, Record<string, unknown>>
      expect(described.placement).toMatchObject({ current: 'worker', reason: 'batching: batches form in the workers' })
      expect(described.batching).toMatchObject({ max_batch: 4, max_queue_delay_ms: 1000, runs: 1, batches: 1, batched_requests: 4, requests_per_run: 4, by_rows: { '3-4': { runs: 1 } } })
      // A request alone runs alone once its queue delay is over: a run of one, in the mean over every run.
      const alone = await gateway.predict({ id: 'alone', ensemble: 'wide', inputs: { input: tensorFromJson([digits.rows[0]!], spec, inputFailure) } })
      expect(alone.models[0]).toMatchObject({ status: 'ok' })
      expect(alone.models[0]!.batch).toBeUndefined()
      const after = gateway.model('wide').executor.describe!() as Record<string, Record<string, unknown>>
      expect(after.batching).toMatchObject({ runs: 2, batches: 1, batched_requests: 4, requests_per_run: 2.5, by_rows: { '1': { runs: 1 }, '3-4': { runs: 1 } } })
    } finally {
      await gateway.close()
    }
  })
})
