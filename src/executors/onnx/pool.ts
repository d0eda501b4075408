// A pool of inference workers shared by every embedded model. Queueing happens here on
// the main thread, earliest deadline first, so a job whose request was decided or cancelled
// is dropped before it starts: a running inference cannot be interrupted, a queued one can.
//
// Fast models are pipelined: a worker holds a second job while it runs the first, so it
// never idles for a message round trip. A job waiting inside a worker can still be
// cancelled through a shared flag the worker reads before it starts the job. Slow or untimed
// models are never pipelined, so a fast job never waits behind a slow one in a worker.
import { Worker } from 'node:worker_threads'
import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { TensorMap, TensorSpec } from '../../tensor/index.ts'
import type { MetricsSink } from '../../types.ts'
import type { SharedResource } from '../types.ts'
import { CANCEL_SLOTS, type FromWorker, type ToWorker } from './protocol.ts'
import { RunTimes } from './run-times.ts'

/** Jobs a worker may hold at once (running + waiting). */
const PIPELINE_DEPTH = 2
/** Only models whose fastest run is under this may wait inside a worker. */
const PIPELINE_MAX_MS = 2
/** How long close() waits for a worker to release its sessions and exit by itself. */
const CLOSE_GRACE_MS = 10_000

export interface PoolOptions {
  readonly workers: number
  /** Jobs waiting for a worker, all models together; past it a job fails OVERLOADED. */
  readonly queueLimit: number
}

export interface LoadedModel {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  /** Warm-up inference times in one worker (batch of 1): how slow the model is before any traffic. */
  readonly warmRunsMs: readonly number[]
}

interface Job {
  readonly id: number
  readonly lane: Lane
  readonly inputs: TensorMap
  readonly deadline: number
  readonly signal: AbortSignal
  readonly resolve: (outputs: TensorMap) => void
  readonly reject: (err: Error) => void
  /** In the main-thread queue (not yet sent to a worker). */
  queued: boolean
  /** The worker it was sent to, until its reply. */
  slot: Slot | null
}

interface Lane {
  readonly key: string
  readonly path: string
  /** At most this many jobs of this model run at once, so one slow model cannot take every worker. */
  readonly cap: number
  readonly queue: Job[]
  inflight: number
  /**
   * Fastest real inference seen (0 = none yet): a job with less time left than this cannot
   * finish, so it never starts. Warm-up runs on zeros are not counted: their cost is not the data's.
   */
  minRunMs: number
  /** Recent inference times in the workers. */
  readonly times: RunTimes
}

interface Slot {
  readonly worker: Worker
  /** Sent and not yet answered, in the order the worker runs them. */
  readonly jobs: Job[]
  /** Shared with the worker: slot `id % CANCEL_SLOTS` holds `id` once that job is cancelled. */
  readonly cancel: Int32Array
  /** Loads still to confirm before this worker takes jobs (after a crash and respawn). */
  loading: number
  /** Called when the worker has no job left (close waits for it). */
  onIdle: (() => void) | undefined
  readonly loads: Map<string, { resolve: (m: LoadedModel) => void; reject: (e: Error) => void }>
}

const workerUrl = new URL('./worker.ts', import.meta.url)

export class OnnxPool implements SharedResource {
  readonly size: number
  private readonly queueLimit: number
  private readonly slots: Slot[] = []
  private readonly lanes = new Map<string, Lane>()
  private queued = 0
  private nextId = 1
  private closed = false

  constructor(options: PoolOptions) {
    this.size = Math.max(1, options.workers)
    this.queueLimit = options.queueLimit
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn())
  }

  /** Loads a model into every worker; resolves with its metadata. `cap`: most jobs of it at once (default none). */
  async register(key: string, path: string, cap = Infinity): Promise<LoadedModel> {
    const lane: Lane = { key, path, cap: Math.max(1, cap), queue: [], inflight: 0, minRunMs: 0, times: new RunTimes() }
    const loaded = await Promise.all(this.slots.map((slot) => this.loadInto(slot, key, path)))
    this.lanes.set(key, lane)
    const { inputs, outputs, warmRunsMs } = loaded[0]!
    return { inputs, outputs, warmRunsMs }
  }

  unregister(key: string): void {
    const lane = this.lanes.get(key)
    if (!lane) return
    this.lanes.delete(key)
    for (const job of lane.queue.splice(0)) this.settle(job, new ModelError(ModelErrorCode.MODEL_FAILED, 'model unloaded'))
    for (const slot of this.slots) this.post(slot, { type: 'unload', key })
  }

  run(key: string, inputs: TensorMap, signal: AbortSignal, deadline: number): Promise<TensorMap> {
    const lane = this.lanes.get(key)
    if (!lane) return Promise.reject(new ModelError(ModelErrorCode.MODEL_FAILED, `model ${key} is not loaded`))
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    const left = deadline - performance.now()
    if (left < lane.minRunMs) return Promise.reject(wouldMiss(lane, left))
    if (this.queued >= this.queueLimit) {
      return Promise.reject(new ModelError(ModelErrorCode.OVERLOADED, `inference queue full (${this.queueLimit} jobs)`, true))
    }
    return new Promise<TensorMap>((resolve, reject) => {
      const job: Job = { id: this.nextId++, lane, inputs, deadline, signal, resolve, reject, queued: true, slot: null }
      lane.queue.push(job)
      this.queued++
      signal.addEventListener('abort', () => this.drop(job), { once: true })
      this.dispatch()
    })
  }

  /** Recent inference times of a model in the workers (undefined for a model not registered). */
  runTimes(key: string): RunTimes | undefined {
    return this.lanes.get(key)?.times
  }

  /** Queue depth and busy workers. */
  stats(): { workers: number; busy: number; queued: number } {
    let busy = 0
    for (const slot of this.slots) if (slot.jobs.length) busy++
    return { workers: this.size, busy, queued: this.queued }
  }

  collect(out: MetricsSink): void {
    const { workers, busy, queued } = this.stats()
    out.gauge('specserve_onnx_workers', 'Inference worker threads.', [[{}, workers]])
    out.gauge('specserve_onnx_workers_busy', 'Inference workers running a job now.', [[{}, busy]])
    out.gauge('specserve_onnx_queue_depth', 'Inference jobs waiting for a worker (the limit is executors.onnx_queue).', [[{}, queued]])
  }

  /**
   * Drops queued jobs, lets the jobs sent to workers finish, then asks each worker to
   * release its sessions and exit. A worker terminated inside a native onnxruntime call
   * (run, create, release) aborts the whole process, so terminate() is only the last resort
   * for a worker that has not exited in CLOSE_GRACE_MS.
   */
  async close(): Promise<void> {
    this.closed = true
    const closing = new ModelError(ModelErrorCode.MODEL_FAILED, 'gateway closing')
    for (const lane of this.lanes.values()) for (const job of lane.queue.splice(0)) this.settle(job, closing)
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.jobs.length) await new Promise<void>((resolve) => (slot.onIdle = resolve))
        const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()))
        slot.worker.ref()
        this.post(slot, { type: 'close' })
        const timer = setTimeout(() => void slot.worker.terminate(), CLOSE_GRACE_MS)
        await exited
        clearTimeout(timer)
      }),
    )
  }

  private spawn(): Slot {
    const cancel = new Int32Array(new SharedArrayBuffer(CANCEL_SLOTS * Int32Array.BYTES_PER_ELEMENT))
    const worker = new Worker(workerUrl, { workerData: { cancel } })
    const slot: Slot = { worker, jobs: [], cancel, loading: 0, loads: new Map(), onIdle: undefined }
    worker.on('message', (msg: FromWorker) => this.onMessage(slot, msg))
    worker.on('error', (err) => this.onCrash(slot, err))
    worker.on('exit', (code) => this.onCrash(slot, new Error(`inference worker exited with code ${code}`)))
    // Only a worker with work in hand keeps the process alive (tests, CLI validate).
    worker.unref()
    return slot
  }

  private loadInto(slot: Slot, key: string, path: string): Promise<LoadedModel> {
    return new Promise((resolve, reject) => {
      slot.loads.set(key, { resolve, reject })
      slot.worker.ref()
      this.post(slot, { type: 'load', key, path })
    })
  }

  private onMessage(slot: Slot, msg: FromWorker): void {
    if (msg.type === 'loaded' || msg.type === 'load-failed') {
      const waiter = slot.loads.get(msg.key)
      slot.loads.delete(msg.key)
      if (msg.type === 'loaded') waiter?.resolve({ ...msg.metadata, warmRunsMs: msg.warmRunsMs })
      else waiter?.reject(new Error(msg.message))
      if (slot.loads.size === 0 && !slot.jobs.length) slot.worker.unref()
      if (slot.loading > 0 && --slot.loading === 0) this.dispatch()
      return
    }
    const at = slot.jobs.findIndex((j) => j.id === msg.id)
    if (at < 0) return
    const job = slot.jobs[at] as Job
    slot.jobs.splice(at, 1)
    job.slot = null
    if (!slot.jobs.length) {
      slot.worker.unref()
      slot.onIdle?.()
    }
    job.lane.inflight--
    if (msg.type === 'result') {
      const lane = job.lane
      lane.minRunMs = lane.minRunMs === 0 ? msg.runMs : Math.min(lane.minRunMs, msg.runMs)
      lane.times.add(msg.runMs)
      job.resolve(msg.outputs)
    } else if (msg.type === 'cancelled') {
      job.reject((job.signal.reason as Error | undefined) ?? new ModelError(ModelErrorCode.MODEL_FAILED, 'cancelled'))
    } else {
      job.reject(new ModelError(ModelErrorCode.MODEL_FAILED, msg.message))
    }
    this.dispatch()
  }

  private onCrash(slot: Slot, err: Error): void {
    const index = this.slots.indexOf(slot)
    if (index < 0) return // already replaced ('error' is followed by 'exit')
    for (const job of slot.jobs.splice(0)) {
      job.lane.inflight--
      job.slot = null
      job.reject(new ModelError(ModelErrorCode.MODEL_FAILED, `inference worker crashed: ${err.message}`))
    }
    for (const waiter of slot.loads.values()) waiter.reject(err)
    slot.onIdle?.()
    if (this.closed) return
    const fresh = this.spawn()
    this.slots[index] = fresh
    for (const lane of this.lanes.values()) {
      fresh.loading++
      this.loadInto(fresh, lane.key, lane.path).catch(() => undefined)
    }
    this.dispatch()
  }

  /** Idle workers first, then a second job for workers running only fast jobs. */
  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.jobs.length || slot.loading > 0) continue
      const job = this.next(false)
      if (!job) return
      this.send(slot, job)
    }
    for (const slot of this.slots) {
      if (slot.loading > 0 || slot.jobs.length >= PIPELINE_DEPTH || !slot.jobs.every((j) => isFast(j.lane))) continue
      const job = this.next(true)
      if (!job) return
      this.send(slot, job)
    }
  }

  private send(slot: Slot, job: Job): void {
    slot.jobs.push(job)
    job.slot = slot
    if (slot.jobs.length === 1) slot.worker.ref()
    job.lane.inflight++
    this.post(slot, { type: 'run', id: job.id, key: job.lane.key, inputs: job.inputs })
  }

  /** Earliest deadline first over the lanes under their cap (only fast lanes when pipelining). */
  private next(fastOnly: boolean): Job | undefined {
    const now = performance.now()
    for (;;) {
      let best: Lane | undefined
      for (const lane of this.lanes.values()) {
        const head = lane.queue[0]
        if (!head || lane.inflight >= lane.cap || (fastOnly && !isFast(lane))) continue
        if (!best || head.deadline < (best.queue[0] as Job).deadline) best = lane
      }
      if (!best) return undefined
      const job = best.queue.shift() as Job
      job.queued = false
      this.queued--
      const left = job.deadline - now
      if (left >= best.minRunMs) return job
      job.reject(wouldMiss(best, left))
    }
  }

  private drop(job: Job): void {
    if (job.slot) {
      // Sent: if the worker has not started it, it never will; if it has, the result is ignored upstream.
      Atomics.store(job.slot.cancel, job.id % CANCEL_SLOTS, job.id)
      return
    }
    if (!job.queued) return
    const index = job.lane.queue.indexOf(job)
    if (index >= 0) job.lane.queue.splice(index, 1)
    this.settle(job, job.signal.reason as Error)
  }

  private settle(job: Job, err: Error): void {
    if (job.queued) this.queued--
    job.queued = false
    job.reject(err)
  }

  private post(slot: Slot, msg: ToWorker): void {
    slot.worker.postMessage(msg)
  }
}

const isFast = (lane: Lane): boolean => lane.minRunMs > 0 && lane.minRunMs <= PIPELINE_MAX_MS

function wouldMiss(lane: Lane, left: number): ModelError {
  return new ModelError(ModelErrorCode.WOULD_MISS_DEADLINE, `needs ~${lane.minRunMs.toFixed(1)} ms, ${left.toFixed(1)} ms left`, true)
}
