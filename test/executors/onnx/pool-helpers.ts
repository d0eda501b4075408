// What the worker-pool tests share: a pool closed after each test, deadlines far away,
// sample rows as FP32 inputs, and a pool's metrics.
import type { Worker } from 'node:worker_threads'
import { afterEach, vi } from 'vitest'
import { OnnxPool, type PoolOptions } from '../../../src/executors/onnx/pool.ts'
import type { TensorMap } from '../../../src/tensor/index.ts'
import type { MetricsSink } from '../../../src/types.ts'
import { samples } from '../../helpers.ts'

/** Far enough that no test job ever runs out of time. */
export const later = (ms = 60_000): number => performance.now() + ms

/** Rows `from`..`from + n` of a task's samples (wrapping around) as the models' FP32 `input`. */
export function sampleRows(task: string, n = 1, from = 0): TensorMap {
  const all = samples(task).rows
  const picked = Array.from({ length: n }, (_, i) => all[(from + i) % all.length]!)
  return { input: { datatype: 'FP32', shape: [picked.length, picked[0]!.length], data: Float32Array.from(picked.flat()) } }
}

/** A pool for one test, closed (and spies restored) after it. */
export function usePool(): { open(options: PoolOptions): OnnxPool } {
  let pool: OnnxPool | undefined
  afterEach(async () => {
    vi.restoreAllMocks()
    await pool?.close()
    pool = undefined
  })
  return { open: (options) => (pool = new OnnxPool(options)) }
}

/** A pool's metrics as it reports them when scraped, by name (counters without `_total`). */
export function metricsOf(pool: OnnxPool): Record<string, number> {
  const got: Record<string, number> = {}
  const take = (name: string, _help: string, points: readonly (readonly [unknown, number])[]): void => void (got[name] = points[0]![1])
  const sink: MetricsSink = { gauge: take, counter: take }
  pool.collect(sink)
  return got
}

/** The pool's worker threads, in order (private: a test reaches in as a crash would). */
export const workersOf = (pool: OnnxPool): Worker[] => (pool as unknown as { workers: { slots: { worker: Worker }[] } }).workers.slots.map((slot) => slot.worker)
