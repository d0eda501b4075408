// What the worker-pool tests share: a pool closed after each test, deadlines far away,
// sample rows as FP32 inputs, a pool's metrics, and a run's answer held from the pool.
import { Worker } from 'node:worker_threads'
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

/** Holds the next run's answer from the pool (the worker's `message` event) until release(), which resolves once it is handed on. */
export function holdFirstAnswer(): { readonly released: boolean; release: () => Promise<void> } {
  let held: (() => void) | undefined
  let caught!: () => void
  const answered = new Promise<void>((resolve) => (caught = resolve))
  const emit = Worker.prototype.emit
  const spy = vi.spyOn(Worker.prototype, 'emit').mockImplementation(function (this: Worker, event: string | symbol, ...args: unknown[]) {
    if (event === 'message' && (args[0] as { type?: string }).type === 'result' && held === undefined) {
      held = () => void emit.call(this, event, ...args)
      spy.mockRestore()
      caught()
      return true
    }
    return emit.call(this, event, ...args)
  } as Worker['emit'])
  const state = {
    released: false,
    release: async () => {
      await answered
      state.released = true
      held!()
    },
  }
  return state
}
