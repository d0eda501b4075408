// Models run on the main thread's own onnxruntime session, no worker hop: what a bare
// fastify + onnxruntime service does, and the cheapest way to run a model that takes a few
// microseconds. The thread's sessions share one inference lane (session.ts); inline-lane.ts
// decides which runs go to it and when (a few at once, the rest waiting most-preferred
// members first), and a model with `batching` stacks its runs of one turn (inline-batch.ts).
import type { TensorMap, TensorSpec } from '../../tensor/index.ts'
import type { InferContext } from '../types.ts'
import { RunTimes } from './run-times.ts'
import { openSession, type Opened, type ThreadSession } from './session.ts'
import { InlineLane, UNLOADED } from './inline-lane.ts'
import { InlineBatches } from './inline-batch.ts'

/** The main thread has one inference lane: every inline model's runs go through it. */
const lane = new InlineLane()

export class InlineModel {
  /** Own times of recent inline runs (waits behind other runs excluded; seeded with the warm-up's). */
  readonly times = new RunTimes()
  /** Runs that answered (a run dropped from the queue, or failed, is not one). */
  ran = 0
  /** Runs inside onnxruntime now: the session is released only once none is. */
  inRuntime = 0
  closed = false
  /** Set by close() while runs are still inside onnxruntime. */
  drained: (() => void) | undefined
  /** Native (run synchronously on the lane's setImmediate callbacks, or in its refill: inline-lane.ts) or, failing that, the public API's. */
  readonly session: ThreadSession
  /** Called after each run with its time recorded (the placement's live check). */
  readonly observe: () => void
  /** With batching: the runs gathered this turn, and the batches' figures. */
  readonly batches: InlineBatches | undefined

  /** The session's declared inputs and outputs, and its warm-up times on this thread. */
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  readonly warmRunsMs: readonly number[]

  private constructor(opened: Opened, observe: (times: RunTimes) => void, maxBatch: number, seedMs: readonly number[] | undefined) {
    this.session = opened.session
    this.batches = maxBatch > 1 && opened.session.sync ? new InlineBatches(maxBatch, opened.warmRunsMs) : undefined
    this.inputs = opened.inputs
    this.outputs = opened.outputs
    this.warmRunsMs = opened.warmRunsMs
    this.observe = () => observe(this.times)
    this.times.addAll(seedMs ?? opened.warmRunsMs)
  }

  /**
   * `native: false` runs it through onnxruntime-node's public API (what serves when its
   * binding is not the one native.ts knows). `maxBatch` over 1 stacks the runs of one turn
   * (native session only: the public API's runs are each their own promise). `seedMs`: the
   * run times its live measurements start from (default: its warm-up's).
   */
  static async open(path: string, observe: (times: RunTimes) => void, options: { native?: boolean; maxBatch?: number; seedMs?: readonly number[] } = {}): Promise<InlineModel> {
    return new InlineModel(await openSession(path, options.native ?? true), observe, options.maxBatch ?? 1, options.seedMs)
  }

  run(inputs: TensorMap, ctx: InferContext): Promise<TensorMap> {
    if (this.closed) return Promise.reject(UNLOADED)
    const spareable = ctx.spareable
    return new Promise<TensorMap>((resolve, reject) => lane.submit({ model: this, inputs, ctx, spareable, queuedAt: 0, urgentAt: spareable ? Infinity : 0, resolve, reject }))
  }

  /**
   * Releases the session once no run of it is inside onnxruntime (releasing it under a
   * running inference would abort the process); runs still queued are refused.
   */
  async close(): Promise<void> {
    this.closed = true
    if (this.inRuntime > 0) await new Promise<void>((resolve) => (this.drained = resolve))
    await this.session.release()
  }
}
