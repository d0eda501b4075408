// A pool of inference workers shared by every embedded model (or a model's dedicated ones).
// Queueing happens here on the main thread, earliest deadline first (across models, and
// within a model's queue but for a batching model's, lane-queue.ts), so a job whose request
// was decided or cancelled is dropped before it starts: a running inference cannot be
// interrupted, a queued one can. Jobs waiting, here or inside a worker that has not begun
// them, are held under the queue limit (queue-depth.ts). Which unit goes to which worker, and
// when, is dispatch.ts's; the worker threads, what they load, a crashed or stuck one's
// replacement are workers.ts's; this file takes requests and hands answers back.
import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { TensorMap } from '../../tensor/index.ts'
import type { MetricAttributes, MetricsSink } from '../../types.ts'
import type { SharedResource } from '../types.ts'
import { rowsOf, type BatchSettings } from './batch.ts'
import { Dispatcher } from './dispatch.ts'
import { PoolLane, type Job, type Unit } from './lane.ts'
import type { WorkerAnswer } from './protocol.ts'
import { cancelUnit, type LoadedModel } from './slot.ts'
import { collectPool, type PoolStats } from './pool-metrics.ts'
import { QueueDepth } from './queue-depth.ts'
import { WATCHDOG, type WatchdogSettings } from './watchdog.ts'
import { PoolWorkers, type Slot, type WorkerHooks } from './workers.ts'

export interface PoolOptions {
  readonly workers: number
  /** Nice steps the workers run below the event loop (executors.onnx_worker_nice); default 0. */
  readonly nice?: number
  /** Jobs waiting for a worker (on the main thread, or inside a worker behind its run or a load), all models together; past it a job fails OVERLOADED. */
  readonly queueLimit: number
  /** When a worker is stuck in a run (watchdog.ts; tests shorten it). */
  readonly watchdog?: WatchdogSettings
}

export interface RegisterOptions {
  /** Most units of this model at once (default: no limit). */
  readonly cap?: number
  readonly batching?: BatchSettings
}

export class OnnxPool implements SharedResource {
  readonly size: number
  private readonly queueLimit: number
  private readonly lanes = new Map<string, PoolLane>()
  private readonly workers: PoolWorkers
  private readonly depth = new QueueDepth()
  private readonly dispatcher: Dispatcher
  private closed = false
  private closing: Promise<void> | undefined
  /** What the workers' answers, crashes and replacements do here (workers.ts). */
  private readonly hooks: WorkerHooks = {
    message: (slot, msg) => this.onMessage(slot, msg),
    failed: (units, message) => this.onLost(units, message),
    lanes: () => this.lanes.values(),
    reloaded: (key, held) => this.reloaded(key, held),
  }

  constructor(options: PoolOptions) {
    this.size = Math.max(1, options.workers)
    this.queueLimit = options.queueLimit
    this.workers = new PoolWorkers(this.size, options.nice ?? 0, this.hooks, options.watchdog ?? WATCHDOG)
    this.dispatcher = new Dispatcher(this.lanes, this.workers.slots, this.depth)
  }

  /** Loads a model into every worker (all from the same file: workers.ts); resolves with its metadata. */
  async register(key: string, path: string, options: RegisterOptions = {}): Promise<LoadedModel> {
    if (this.closed) throw new ModelError(ModelErrorCode.MODEL_FAILED, 'gateway closing')
    const { loaded, stamp } = await this.workers.loadAll(key, path)
    const { inputs, outputs, warmRunsMs } = loaded
    const lane = new PoolLane(key, path, options.cap ?? Infinity, options.batching, warmRunsMs, stamp)
    this.lanes.set(key, lane)
    // A worker that crashed meanwhile was replaced by one that may have failed to load it.
    if (!this.workers.held(key)) this.lose(lane)
    return { inputs, outputs, warmRunsMs }
  }

  unregister(key: string): void {
    const lane = this.lanes.get(key)
    if (!lane) return
    this.lanes.delete(key)
    lane.clearTimer()
    for (const job of lane.queue.drain()) this.settle(job, new ModelError(ModelErrorCode.MODEL_FAILED, 'model unloaded'))
    this.workers.unloadAll(key)
  }

  /** Runs a model on these inputs; the outputs carry BATCH_ROWS when they ran in a batch. */
  run(key: string, inputs: TensorMap, signal: AbortSignal, deadline: number): Promise<TensorMap> {
    const lane = this.lanes.get(key)
    if (!lane || this.closed) return Promise.reject(new ModelError(ModelErrorCode.MODEL_FAILED, `model ${key} is not loaded`))
    if (lane.lost !== undefined) return Promise.reject(new ModelError(ModelErrorCode.MODEL_FAILED, lane.lost))
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    const now = performance.now()
    const left = deadline - now
    if (lane.refuses(left, now)) return Promise.reject(lane.wouldMiss(left))
    if (this.depth.count >= this.queueLimit) {
      return Promise.reject(new ModelError(ModelErrorCode.OVERLOADED, `inference queue full (${this.queueLimit} jobs)`, true))
    }
    return new Promise<TensorMap>((resolve, reject) => {
      const probe = left < lane.minRunMs
      const job: Job = { lane, inputs, rows: rowsOf(inputs), deadline, signal, enqueuedAt: now, resolve, reject, queued: true, unit: null, probe }
      lane.queue.push(job)
      this.depth.count++
      signal.addEventListener('abort', () => this.drop(job), { once: true })
      this.dispatcher.schedule()
    })
  }

  /** A model's runs and batching figures (undefined for a model not registered). */
  laneStats(key: string): PoolLane | undefined {
    return this.lanes.get(key)
  }

  /** Queue depth, busy workers, the fewest nice steps a worker reported it runs below the event loop, crashes, stuck workers. */
  stats(): PoolStats {
    return { workers: this.size, queued: this.depth.count, ...this.workers.stats() }
  }

  /** Is a worker thread inside a run: holding a unit, or set aside as stuck in one (a close waits for it)? */
  inRun(): boolean {
    const { busy, setAside } = this.workers.stats()
    return busy > 0 || setAside > 0
  }

  collect(out: MetricsSink, pool: MetricAttributes = {}): void {
    collectPool(out, pool, this.stats())
  }

  /** The gateway is stopping: loads the workers have not begun are refused (close() follows, once its models are closed). */
  beginClose(): void {
    this.workers.beginClose()
  }

  /**
   * Drops queued jobs, lets the units sent to workers finish, then asks each worker to
   * release its sessions and exit (WorkerSlot.close: terminate() is only the last resort).
   * Resolves once every thread has exited, those set aside as stuck included, whose runs may
   * never end: the caller bounds the wait (workers.ts, stuckExited).
   */
  async close(): Promise<void> {
    await this.closeLeavingStuck()
    await this.workers.stuckExited()
  }

  /**
   * close(), but resolves once the workers not set aside as stuck have exited: a run stuck
   * meanwhile is set aside when the watchdog finds it, so this ends within its deadline plus
   * the watchdog's margin. stats().setAside counts the stuck threads still running.
   */
  closeLeavingStuck(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    // What this turn handed to the pool is sent first, as if close came a moment later.
    this.dispatcher.flush()
    this.closed = true
    const closing = new ModelError(ModelErrorCode.MODEL_FAILED, 'gateway closing')
    for (const lane of this.lanes.values()) {
      lane.clearTimer()
      for (const job of lane.queue.drain()) this.settle(job, closing)
    }
    await this.workers.close()
  }

  private onMessage(slot: Slot, msg: WorkerAnswer): void {
    if (msg.type === 'loaded' || msg.type === 'load-failed') {
      const ready = slot.loaded(msg)
      this.depth.moved(slot)
      if (ready) this.dispatcher.schedule()
      return
    }
    const unit = slot.answered(msg.id)
    if (!unit) return
    this.depth.moved(slot)
    if (msg.type === 'result') {
      this.dispatcher.answered(unit, msg.runMs)
      unit.lane.answered(unit, msg.outputs, msg.runMs)
    } else if (msg.type === 'apart') {
      unit.lane.answeredApart(unit, msg.answers)
    } else {
      unit.lane.failed(unit, msg.type === 'failed' ? new ModelError(ModelErrorCode.MODEL_FAILED, msg.message) : undefined)
    }
    this.dispatcher.schedule()
  }

  /** A worker crashed or was set aside as stuck holding these units; true: it is to be replaced (workers.ts). */
  private onLost(units: readonly Unit[], message: string): boolean {
    const lost = new ModelError(ModelErrorCode.MODEL_FAILED, message)
    for (const unit of units) {
      this.depth.lost(unit)
      unit.lane.failed(unit, lost)
    }
    this.dispatcher.schedule()
    return !this.closed
  }

  /**
   * A replacement worker's load answered (workers.ts). One that failed leaves that worker
   * without the model (dispatch.ts passes it by); once no worker has it or is loading it, its
   * jobs fail at once rather than wait for a worker forever.
   */
  private reloaded(key: string, held: boolean): void {
    const lane = this.lanes.get(key)
    if (lane && held) lane.lost = undefined
    else if (lane) this.lose(lane)
  }

  private lose(lane: PoolLane): void {
    lane.lost = `model ${lane.key} is in no inference worker: a worker started again after a crash could not load it; a reload loads it again`
    lane.clearTimer()
    for (const job of lane.queue.drain()) this.settle(job, new ModelError(ModelErrorCode.MODEL_FAILED, lane.lost))
  }

  private drop(job: Job): void {
    const unit = job.unit
    if (unit) {
      // Sent: once no job needs the unit, a worker that has not started it never will. One it
      // started still answers: a late answer is data (late records, counters, placement), and
      // callers with a time limit of their own stop waiting themselves (limited()).
      if (--unit.live === 0) cancelUnit(unit)
      return
    }
    if (!job.queued) return
    job.lane.queue.remove(job)
    this.settle(job, job.signal.reason as Error)
  }

  private settle(job: Job, err: Error): void {
    if (job.queued) this.depth.count--
    job.queued = false
    job.reject(err)
  }
}
