// A pool of inference workers shared by every embedded model. Queueing happens here on
// the main thread, earliest deadline first (across models, and within a model's queue but
// for a batching model's, lane-queue.ts), so a job whose request was decided or cancelled
// is dropped before it starts: a running inference cannot be interrupted, a queued one can.
//
// Dispatch runs once per turn of the event loop (a microtask), so every unit handed to one
// worker in that turn (the co-located members of an ensemble's request) goes in one message.
// Fast models are pipelined: a worker holds up to four of their units, so it never idles for
// a message round trip and a request's fast members travel together; a unit waiting inside a
// worker (behind another, or behind a load) counts as queued (queue-depth.ts), and can still
// be cancelled through a shared flag the worker reads before it starts it. Fast is by a model's runs (lane.ts: most of its recent ones tiny, none long
// of late): a slow, untimed or
// input-dependent model's units go one per idle worker, never behind another in a worker.
// A model with batching runs the jobs waiting together as one batch (lane.ts says when).
// The worker threads, what they load, a crashed or stuck one's replacement are workers.ts's.
import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { TensorMap } from '../../tensor/index.ts'
import type { MetricAttributes, MetricsSink } from '../../types.ts'
import type { SharedResource } from '../types.ts'
import { rowsOf, type BatchSettings } from './batch.ts'
import { PoolLane, type Job, type Unit } from './lane.ts'
import { wireInputs, type WorkerAnswer } from './protocol.ts'
import { cancelUnit, nextUnitId, type LoadedModel } from './slot.ts'
import { collectPool, type PoolStats } from './pool-metrics.ts'
import { QueueDepth } from './queue-depth.ts'
import { WATCHDOG, type WatchdogSettings } from './watchdog.ts'
import { PoolWorkers, type Slot, type WorkerHooks } from './workers.ts'

/** Units a worker may hold at once (running + waiting), when they are all fast. */
const PIPELINE_DEPTH = 4

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
  /** The workers' slots (workers.ts: a crashed one's is replaced in place). */
  private readonly slots: readonly Slot[]
  private readonly depth = new QueueDepth()
  private nextId = 1
  private dispatching = false
  /** How late batch wake-ups have fired, smoothed (ms); starts at a timer's usual granularity. */
  private lateMs = 1
  /** A unit's time in the pool beyond its run (messages, thread wake-ups), smoothed (ms). */
  private hopMs = 1
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
    this.slots = this.workers.slots
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
      this.schedule()
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
    if (this.dispatching) this.dispatch()
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
      if (ready) this.schedule()
      return
    }
    const unit = slot.answered(msg.id)
    if (!unit) return
    this.depth.moved(slot)
    if (msg.type === 'result') {
      if (unit.sentAt >= 0) this.hopMs = this.hopMs * 0.9 + Math.max(0, performance.now() - unit.sentAt - msg.runMs) * 0.1
      unit.lane.answered(unit, msg.outputs, msg.runMs)
    } else if (msg.type === 'apart') {
      unit.lane.answeredApart(unit, msg.answers)
    } else {
      unit.lane.failed(unit, msg.type === 'failed' ? new ModelError(ModelErrorCode.MODEL_FAILED, msg.message) : undefined)
    }
    this.schedule()
  }

  /** A worker crashed or was set aside as stuck holding these units; true: it is to be replaced (workers.ts). */
  private onLost(units: readonly Unit[], message: string): boolean {
    const lost = new ModelError(ModelErrorCode.MODEL_FAILED, message)
    for (const unit of units) {
      this.depth.lost(unit)
      unit.lane.failed(unit, lost)
    }
    this.schedule()
    return !this.closed
  }

  /**
   * A replacement worker's load answered (workers.ts). One that failed leaves that worker
   * without the model (sendNext passes it by); once no worker has it or is loading it, its
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

  /** Dispatch once, after everything this turn has queued. */
  private schedule(): void {
    if (this.dispatching) return
    this.dispatching = true
    queueMicrotask(this.dispatch)
  }

  /**
   * Idle workers first, then more units for workers holding only fast ones (up to
   * PIPELINE_DEPTH, so all of a request's fast members can go to one worker at once); then
   * one message per worker.
   */
  private readonly dispatch = (): void => {
    this.dispatching = false
    const now = performance.now()
    // Nothing to send to a worker that has every model means nothing for the others either;
    // not so for one that lacks a model (workers.ts): the next may have it.
    let more = true
    for (const slot of this.slots) {
      if (!more) break
      if (slot.full(1)) continue
      if (!this.sendNext(slot, false, now)) more = slot.lacks
    }
    for (const slot of this.slots) {
      while (more && !slot.full(PIPELINE_DEPTH) && allPipelined(slot.units)) {
        if (this.sendNext(slot, true, now)) continue
        more = slot.lacks
        break
      }
    }
    for (const slot of this.slots) slot.flush()
  }

  /**
   * Sends the next unit to a worker, earliest deadline first over the lanes ready to send
   * (a batching lane by the earliest in its queue: that job goes only after the head's
   * batch); false when none is.
   */
  private sendNext(slot: Slot, pipelinedOnly: boolean, now: number): boolean {
    for (;;) {
      let best: PoolLane | undefined
      let bestDeadline = Infinity
      for (const lane of this.lanes.values()) {
        const first = lane.queue.earliest()
        if (!first || lane.inflight >= lane.cap || (pipelinedOnly && !lane.pipelined)) continue
        if (slot.lacks && !slot.models.has(lane.key)) continue
        if (best && first.deadline >= bestDeadline) continue
        if (lane.batching && !this.batchReady(lane, now)) continue
        best = lane
        bestDeadline = first.deadline
      }
      if (!best) return false
      const taken = best.queue.length
      const unit = best.nextUnit(now, this.nextId, slot.units.length === 0)
      this.depth.count -= taken - best.queue.length
      if (!unit) continue
      this.nextId = nextUnitId(this.nextId)
      best.inflight++
      slot.send(unit, best.key, unit.jobs.map((j) => wireInputs(j.inputs)))
      this.depth.sent(slot, unit)
      return true
    }
  }

  /** Is a batching lane's head batch to be sent now? If not, the lane arms a wake-up for when it is. */
  private batchReady(lane: PoolLane, now: number): boolean {
    return lane.batchDue(now, this.hopMs + this.lateMs, this.onWake)
  }

  /** A batch wake-up fired `lateMs` after it was due: timers run late on a busy loop, and batches keep that in hand. */
  private readonly onWake = (lateMs: number): void => {
    this.lateMs = this.lateMs * 0.8 + lateMs * 0.2
    this.schedule()
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

function allPipelined(units: readonly Unit[]): boolean {
  for (const unit of units) if (!unit.lane.pipelined) return false
  return true
}
