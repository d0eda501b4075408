// Which jobs wait inside a worker (pipelined), judged by the model's runs, and how they count
// in the pool's queue. A model whose cost depends on its input is fast by its fastest run, yet
// holds a job queued behind one of its long runs for as long as that run.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Tensor, TensorMap } from '../../../src/tensor/index.ts'
import { root, samples } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { writeCostlyModel } from './hand-made-models.ts'
import { later, sampleRows, usePool } from './pool-helpers.ts'

const signal = new AbortController().signal
/** The pool dispatches once per turn of the event loop (a microtask): after this, what it can send is sent. */
const dispatched = (): Promise<void> => Promise.resolve()
/** One row for the costly model: `cost` is its column 3 (its Loop turns, in thousands: ~1.5 ms each). */
const costing = (cost: number): TensorMap => ({ input: { datatype: 'FP32', shape: [1, 4], data: Float32Array.from([1, 2, 3, cost]) } })

const pools = usePool()

describe('ONNX worker pool: which jobs wait inside a worker', () => {
  it('runs a model whose cost depends on its input one at a time: a fast job goes to the worker that frees first, not behind a slow run', async () => {
    const path = join(tempDir('specserve-pipelining-'), 'costly.onnx')
    writeCostlyModel(path, 1000)
    const pool = pools.open({ workers: 2, queueLimit: 16 })
    await pool.register('costly', path)
    // Fast runs, and one long one (some 60 ms): its fastest run says fast, its long run does not.
    for (let i = 0; i < 4; i++) await pool.run('costly', costing(0), signal, later())
    await pool.run('costly', costing(40), signal, later())
    expect(pool.laneStats('costly')!.minRunMs).toBeLessThan(2)
    const answered: string[] = []
    const run = (name: string, cost: number, budgetMs = 60_000): Promise<void> =>
      pool.run('costly', costing(cost), signal, later(budgetMs)).then(() => void answered.push(name))
    // Worker 0 gets the long run (earliest deadline first), worker 1 one ten times shorter.
    const long = run('long', 400, 30_000)
    const short = run('short', 40)
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 2, queued: 0 })
    // Were it pipelined, it would wait in worker 0 behind the long run while worker 1 idles.
    const fast = run('fast', 0)
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 2, queued: 1 })
    await Promise.all([long, short, fast])
    expect(answered).toEqual(['short', 'fast', 'long'])
  })

  it('counts a job waiting inside a worker as queued, in the gauge and against the queue limit', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 1 })
    await pool.register('fast', join(root, 'models', 'cancer_logreg.onnx'))
    for (let i = 0; i < 3; i++) await pool.run('fast', sampleRows('cancer'), signal, later())
    expect(pool.laneStats('fast')!.pipelined).toBe(true)
    const row = samples('cancer').rows[0]!
    const n = 40_000
    const long: TensorMap = { input: { datatype: 'FP32', shape: [n, 30], data: Float32Array.from({ length: n * 30 }, (_, i) => row[i % 30]!) } }
    const first = pool.run('fast', long, signal, later())
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 0 })
    const second = pool.run('fast', sampleRows('cancer'), signal, later())
    await dispatched()
    // Both went to the worker: the second waits there, behind the first, and fills the queue.
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 1 })
    await expect(pool.run('fast', sampleRows('cancer'), signal, later())).rejects.toMatchObject({ code: 'OVERLOADED', message: 'inference queue full (1 jobs)' })
    const labels = (out: TensorMap): number => ((out.label as Tensor).data as BigInt64Array).length
    expect(labels(await first)).toBe(n)
    expect(labels(await second)).toBe(1)
    expect(pool.stats().queued).toBe(0)
  })
})
