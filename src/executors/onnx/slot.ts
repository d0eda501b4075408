// One inference worker as the pool sees it: the units sent to it and not yet answered,
// the models it loaded and the loads it has to confirm, the outbox of units handed to it in
// this turn of the event loop (sent together as one message), its orderly close, and its
// retirement once the watchdog judges it stuck (watchdog.ts).
import './ort-env.ts'
import type { Worker } from 'node:worker_threads'
import { startThread } from '../../thread-entry.ts'
import type { TensorMap, TensorSpec } from '../../tensor/index.ts'
import { CANCEL_SLOTS, type FromWorker, type ToWorker, type WireUnit, type WorkerAnswer, type WorkerSetup } from './protocol.ts'

export interface LoadedModel {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  /** Warm-up inference times in one worker (batch of 1): how slow the model is before any traffic. */
  readonly warmRunsMs: readonly number[]
}

/** What a unit carries for the pool: its jobs' settle functions are the pool's business. */
export interface SentUnit {
  readonly id: number
  /** Jobs still waiting for this unit's answer; at 0 the worker is told not to start it. */
  live: number
  /** The cancel flags of the worker it was sent to (set on send). */
  flags: Int32Array | undefined
  /** The number of the message that took it to its worker, counted per worker (set on send): a load sent before it runs before it. */
  posted: number
}

/**
 * What the pool reads of a worker's queue (the queue depth, the watchdog). A worker runs what it
 * is sent in order, units and loads alike: only its first unit can be running, and only once no
 * load sent before it is left unanswered.
 */
export interface Holder<U extends SentUnit = SentUnit> {
  /** Sent and not answered, in the order the worker runs them. */
  readonly units: readonly U[]
  /** Does this unit wait behind a load the worker has not answered? */
  waitsOnLoad(unit: U): boolean
}

/** The unit the worker has begun (its first, no unanswered load ahead of it); undefined when none has. */
export function begun<U extends SentUnit>(slot: Holder<U>): U | undefined {
  const head = slot.units[0]
  return head === undefined || slot.waitsOnLoad(head) ? undefined : head
}

/** Unit ids stay within what the cancel flags (an Int32Array) hold: past it they start again at 1. */
export const MAX_UNIT_ID = 2 ** 31 - 1
export const nextUnitId = (id: number): number => (id < MAX_UNIT_ID ? id + 1 : 1)

/** If the worker holding the unit has not started it, it never will. */
export function cancelUnit(unit: SentUnit): void {
  if (unit.flags) Atomics.store(unit.flags, unit.id % CANCEL_SLOTS, unit.id)
}

interface PendingLoad {
  readonly resolve: (m: LoadedModel) => void
  readonly reject: (e: Error) => void
  readonly respawn: boolean
  /** Unloaded before it answered: it does not count as loaded. */
  dropped: boolean
  /** The number of its message (SentUnit.posted). */
  readonly posted: number
}

const workerUrl = new URL('./worker.ts', import.meta.url)

/** How long close() waits for a worker to release its sessions and exit by itself. */
const CLOSE_GRACE_MS = 10_000

let priorityWarned = false

export class WorkerSlot<U extends SentUnit = SentUnit> implements Holder<U> {
  readonly worker: Worker
  /** Sent and not yet answered, in the order the worker runs them. */
  readonly units: U[] = []
  /** Loads still to confirm before this worker takes units (after a crash and respawn). */
  loading = 0
  /** The models it answered loaded (and not unloaded since). */
  readonly models = new Set<string>()
  /**
   * A load after a respawn failed (the file changed since, say): it may lack a model every
   * other worker has, so the pool asks `models` before sending it a unit. Never set on a
   * worker that loaded every model, whose dispatch needs no such look-up.
   */
  lacks = false
  /** The thread has exited (crashed, or closed). */
  exited = false
  /** Resolves once the thread has exited. */
  readonly exit: Promise<void>
  /** Nice steps it runs below the event loop, as it reported (undefined until it has). */
  nice: number | undefined
  /** Called when the worker has no unit left (close waits for it). */
  onIdle: (() => void) | undefined
  /** Judged stuck and set aside (retire): it takes nothing more, and closes once the run it is in ends. */
  retired = false
  /** The unit the watchdog last saw running here, and since when (watchdog.ts). */
  watched: U | undefined
  watchedSince = 0
  private readonly outbox: WireUnit[] = []
  /** Shared with the worker: slot `id % CANCEL_SLOTS` holds `id` once that unit is cancelled. */
  private readonly cancelFlags: Int32Array
  /** The id of the last unit sent. */
  private lastId = 0
  private readonly loads = new Map<string, PendingLoad>()
  /** Shared with the worker: set once close() begins, so it opens no load still queued. */
  private readonly closing: Int32Array
  /** Messages posted to the worker so far. */
  private posted = 0

  constructor(nice: number, onMessage: (slot: WorkerSlot<U>, msg: WorkerAnswer) => void, onCrash: (slot: WorkerSlot<U>, err: Error) => void) {
    this.cancelFlags = new Int32Array(new SharedArrayBuffer(CANCEL_SLOTS * Int32Array.BYTES_PER_ELEMENT))
    this.closing = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT))
    const setup: WorkerSetup = { cancel: this.cancelFlags, closing: this.closing, nice }
    this.worker = startThread(workerUrl, { workerData: setup })
    this.worker.on('message', (msg: FromWorker) => (msg.type === 'priority' ? this.prioritized(msg, nice) : onMessage(this, msg)))
    this.worker.on('error', (err) => onCrash(this, err))
    let exited!: () => void
    this.exit = new Promise((resolve) => (exited = resolve))
    this.worker.on('exit', (code) => {
      this.exited = true
      onCrash(this, new Error(`inference worker exited with code ${code}`))
      exited()
    })
    // Only a worker with work in hand keeps the process alive (tests, CLI validate).
    this.worker.unref()
  }

  private prioritized(msg: Extract<FromWorker, { type: 'priority' }>, asked: number): void {
    this.nice = msg.nice
    if (msg.message === undefined || priorityWarned) return
    priorityWarned = true
    process.emitWarning(`inference workers run at the event loop's priority: executors.onnx_worker_nice ${asked} refused (${msg.message})`, { code: 'SPECSERVE_WORKER_NICE' })
  }

  /** Takes no unit now: still loading, or holding `depth` units already. */
  full(depth: number): boolean {
    return this.loading > 0 || this.units.length >= depth
  }

  /**
   * Loads a model if its file still has this stamp (src/file-stamp.ts). `respawn`: one of the
   * loads a worker started after a crash must confirm before it takes units.
   */
  load(key: string, path: string, stamp: string | undefined, respawn = false): Promise<LoadedModel> {
    if (Atomics.load(this.closing, 0) !== 0) return Promise.reject(new Error('gateway closing'))
    return new Promise((resolve, reject) => {
      this.loads.set(key, { resolve, reject, respawn, dropped: false, posted: this.posted + 1 })
      if (respawn) this.loading++
      this.worker.ref()
      this.post({ type: 'load', key, path, stamp })
    })
  }

  /** Has it loaded this model, or a load of it still to answer? */
  mayHold(key: string): boolean {
    return this.models.has(key) || this.loads.has(key)
  }

  unload(key: string): void {
    this.models.delete(key)
    // A load still to answer is undone by this message, which comes after it.
    const pending = this.loads.get(key)
    if (pending) pending.dropped = true
    this.post({ type: 'unload', key })
  }

  /** A load's answer: settles its waiter; true once every load of a respawned worker is in. */
  loaded(msg: Extract<FromWorker, { type: 'loaded' | 'load-failed' }>): boolean {
    const waiter = this.loads.get(msg.key)
    this.loads.delete(msg.key)
    if (msg.type === 'loaded') {
      if (waiter && !waiter.dropped) this.models.add(msg.key)
      waiter?.resolve({ ...msg.metadata, warmRunsMs: msg.warmRunsMs })
    } else {
      if (waiter?.respawn) this.lacks = true
      waiter?.reject(new Error(msg.message))
    }
    this.idleCheck()
    return waiter?.respawn === true && --this.loading === 0
  }

  /** Queues a unit for this turn's message. */
  send(unit: U, key: string, parts: readonly TensorMap[]): void {
    // The ids started again: a flag left from a unit of the last round must not cancel its namesake.
    if (unit.id <= this.lastId) for (let i = 0; i < CANCEL_SLOTS; i++) Atomics.store(this.cancelFlags, i, 0)
    this.lastId = unit.id
    unit.flags = this.cancelFlags
    // This turn's message (flush) is the next one posted.
    unit.posted = this.posted + 1
    if (this.units.push(unit) === 1) this.worker.ref()
    this.outbox.push({ id: unit.id, key, parts })
  }

  /** Sends this turn's units as one message. */
  flush(): void {
    if (this.outbox.length === 0) return
    this.post({ type: 'run', units: this.outbox.splice(0) })
  }

  /** The unit an answer is for, no longer held. */
  answered(id: number): U | undefined {
    const at = this.units.findIndex((u) => u.id === id)
    if (at < 0) return undefined
    const unit = this.units[at]!
    this.units.splice(at, 1)
    this.idleCheck()
    return unit
  }

  /** Everything it held, after a crash: the units and the loads (rejected). */
  drain(err: Error): U[] {
    for (const waiter of this.loads.values()) waiter.reject(err)
    this.loads.clear()
    this.outbox.length = 0
    const units = this.units.splice(0)
    this.onIdle?.()
    return units
  }

  /** Does this unit wait behind a load the worker has not answered? */
  waitsOnLoad(unit: U): boolean {
    if (this.loads.size === 0) return false
    for (const load of this.loads.values()) if (load.posted < unit.posted) return true
    return false
  }

  /**
   * Judged stuck: it takes nothing more. Its loads fail with `err` and its units are handed
   * back (the pool fails them: any answer now is ignored), those not begun cancelled; it is
   * asked to close after the run it is in, so its thread exits once that run ends, never
   * terminated (inside a run that would abort the process). It stays ref'd: a process whose
   * loop drained would tear it down inside that run, and abort.
   */
  retire(err: Error): U[] {
    this.retired = true
    this.beginClose()
    for (const unit of this.units) cancelUnit(unit)
    const units = this.drain(err)
    this.post({ type: 'close' })
    this.worker.ref()
    return units
  }

  /** From now on the worker answers the loads it has not begun `gateway closing`, without opening them. */
  beginClose(): void {
    Atomics.store(this.closing, 0, 1)
  }

  /**
   * Sends this turn's units, lets every unit sent finish and every load sent be answered,
   * then asks the worker to release its sessions and exit. A worker terminated inside a
   * native onnxruntime call (run, create, release) aborts the whole process, so terminate()
   * is only the last resort for a worker that has not exited CLOSE_GRACE_MS after it
   * answered everything: while it still answers it is not hung, and a load (a create) can
   * take longer than that. Loads it has not begun it answers `gateway closing` at once, so
   * only the one it is in is waited for. A worker retired as stuck (now, or while this waited
   * for its units) was asked to close already, and this returns: its thread exits once its run
   * ends, which may be never (`exit`; the pool waits for it apart, and the caller bounds that).
   */
  async close(): Promise<void> {
    this.beginClose()
    this.flush()
    if (this.units.length || this.loads.size) await new Promise<void>((resolve) => (this.onIdle = resolve))
    if (this.exited || this.retired) return
    this.worker.ref()
    this.post({ type: 'close' })
    const timer = setTimeout(() => void this.worker.terminate(), CLOSE_GRACE_MS)
    await this.exit
    clearTimeout(timer)
  }

  post(msg: ToWorker): void {
    this.posted++
    this.worker.postMessage(msg)
  }

  private idleCheck(): void {
    if (this.units.length || this.loads.size) return
    if (!this.retired) this.worker.unref() // a set-aside worker is still in its run (retire)
    this.onIdle?.()
  }
}
