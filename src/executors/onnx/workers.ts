// The pool's worker threads: a WorkerSlot each, the models they load and from which file,
// the replacement of one that crashed or got stuck, and the watchdog that finds those
// (watchdog.ts). Every worker loads a model's file as it was when the model was registered
// (its stamp, src/file-stamp.ts), a replacement included: that one must not answer for a
// version with a file replaced on disk since, so it loads that file or nothing, and then gets
// none of that model's units (dispatch.ts, sendNext). A crash is logged (warning
// SPECSERVE_WORKER_CRASH) and counted (specserve_onnx_worker_restarts_total); so is a worker
// set aside as stuck (SPECSERVE_WORKER_STUCK, specserve_onnx_workers_stuck_total), whose
// thread is left to end its run and close, never terminated.
import { stampOf } from '../../file-stamp.ts'
import type { PoolLane, Unit } from './lane.ts'
import type { WorkerAnswer } from './protocol.ts'
import { WorkerSlot, type LoadedModel } from './slot.ts'
import { stuckFor, type WatchdogSettings } from './watchdog.ts'

export type Slot = WorkerSlot<Unit>

/** What the pool does about its workers' answers and crashes. */
export interface WorkerHooks {
  message(slot: Slot, msg: WorkerAnswer): void
  /** A worker crashed or was set aside holding these units (never to be answered): they fail with `message`; false: do not replace it (closing). */
  failed(units: Unit[], message: string): boolean
  /** The models a replacement is to load. */
  lanes(): Iterable<PoolLane>
  /** One of a replacement's loads answered: does some worker still have the model (or a load of it to answer)? */
  reloaded(key: string, held: boolean): void
}

export class PoolWorkers {
  /** One per worker, in place: a crashed or stuck worker's slot is replaced at its index. */
  readonly slots: Slot[] = []
  private readonly nice: number
  private readonly hooks: WorkerHooks
  private readonly watchdog: WatchdogSettings
  /** Its one timer: every `everyMs`, a look at each worker's running unit. */
  private readonly sweeper: NodeJS.Timeout
  /** Workers set aside as stuck whose thread has not exited yet (their run goes on). */
  private readonly setAside = new Set<Slot>()
  /** Workers set aside as stuck, ever. */
  private stuck = 0
  /** The run of the last stuck worker left in place (set-aside threads as many as the workers): said once per run. */
  private capSaidFor: Unit | undefined
  /** Models being registered (not lanes yet): a replacement started meanwhile loads them too. */
  private readonly registering = new Map<string, Registration>()
  private closing = false
  /** close() began: nothing replaces a worker now, so a stuck one is set aside past the cap too. */
  private shut = false
  /** Workers started again after a crash. */
  private restarts = 0

  constructor(size: number, nice: number, hooks: WorkerHooks, watchdog: WatchdogSettings) {
    this.nice = nice
    this.hooks = hooks
    this.watchdog = watchdog
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
    this.sweeper = setInterval(this.sweep, watchdog.everyMs).unref()
  }

  /**
   * Loads a model into every worker from the file as it is now; rejects if one fails (the
   * others then unload it). A worker lost before it answered (crashed, or set aside as stuck
   * behind a run) does not fail it: the worker started in its place loads the model too, and
   * its answer counts instead (loadedAt).
   */
  async loadAll(key: string, path: string): Promise<{ loaded: LoadedModel; stamp: string | undefined }> {
    const stamp = await stampOf(path)
    const loads = new Map<Slot, Promise<LoadedModel>>()
    for (const slot of this.slots) loads.set(slot, slot.load(key, path, stamp))
    this.registering.set(key, { path, stamp, loads })
    try {
      const loaded = await Promise.all(this.slots.map((_, index) => this.loadedAt(index, loads)))
      return { loaded: loaded[0]!, stamp }
    } catch (err) {
      // The workers that did load it must not keep a session nobody will use.
      this.unloadAll(key)
      throw err
    } finally {
      this.registering.delete(key)
    }
  }

  unloadAll(key: string): void {
    for (const slot of this.slots) slot.unload(key)
  }

  /** Does some worker have this model, or a load of it still to answer? */
  held(key: string): boolean {
    for (const slot of this.slots) if (slot.mayHold(key)) return true
    return false
  }

  /** Workers holding a unit, the fewest nice steps one reported it runs below the event loop, crashes, stuck workers. */
  stats(): { busy: number; nice: number; restarts: number; stuck: number; setAside: number } {
    let busy = 0
    let nice = this.nice
    for (const slot of this.slots) {
      if (slot.units.length) busy++
      if (slot.nice !== undefined) nice = Math.min(nice, slot.nice)
    }
    return { busy, nice, restarts: this.restarts, stuck: this.stuck, setAside: this.setAside.size }
  }

  /** Loads not begun are refused from now on (a stop during the first load need not wait for them). */
  beginClose(): void {
    this.closing = true
    for (const slot of this.slots) slot.beginClose()
  }

  /**
   * Closes every worker once its units are done. The watchdog goes on meanwhile: a worker
   * stuck in a run is set aside (however many are already: none is replaced now), so its
   * requests fail at once rather than when the run ends, and this does not wait for its run.
   * Resolves once every worker has exited but those set aside (then or before): stuckExited().
   */
  async close(): Promise<void> {
    this.beginClose()
    this.shut = true
    await Promise.all(this.slots.map((slot) => slot.close()))
    clearInterval(this.sweeper)
  }

  /**
   * Resolves once every thread set aside as stuck has exited, its run over. A thread inside
   * onnxruntime can be neither stopped nor outlived by a clean exit (the process exit waits
   * for its run, then aborts), so the caller bounds this wait and ends the process otherwise
   * (serve: its grace, then the signal). After close(), which sets aside no more.
   */
  async stuckExited(): Promise<void> {
    await Promise.all([...this.setAside].map((slot) => slot.exit))
  }

  private spawn(): Slot {
    const slot = new WorkerSlot<Unit>(this.nice, this.hooks.message, (slot, err) => this.onCrash(slot, err))
    // A worker replaced while the gateway stops takes no load either.
    if (this.closing) slot.beginClose()
    return slot
  }

  private onCrash(slot: Slot, err: Error): void {
    // A worker set aside as stuck has exited (its run ended, or it crashed): its units failed when it was set aside.
    if (this.setAside.delete(slot)) return
    const index = this.slots.indexOf(slot)
    if (index < 0) return // already replaced ('error' is followed by 'exit')
    const units = slot.drain(err)
    // Not while the gateway stops: its workers exit then, and this is how their exit is seen.
    if (!this.hooks.failed(units, `inference worker crashed: ${err.message}`)) return
    this.restarts++
    process.emitWarning(`inference worker crashed (${err.message}) and was started again: ${held(units)}`, { code: 'SPECSERVE_WORKER_CRASH' })
    this.replace(index)
  }

  /**
   * The watchdog's look at each worker (watchdog.ts): one stuck in a run is set aside, while
   * fewer threads than the pool has workers are set aside already. Past that, a stuck worker is
   * left in place (its jobs wait, and fail at their deadlines): each set-aside thread holds a
   * core and every model's sessions until its run ends, and inputs that never end, sent one
   * after another, would otherwise grow threads and memory without bound. Said once per stuck run.
   * Once close() has begun every stuck worker is set aside: none is replaced then, and a close
   * must not wait for a run that may never end.
   */
  private readonly sweep = (): void => {
    const now = performance.now()
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i]!
      if (slot.retired) continue
      const ranMs = stuckFor(slot, now, this.watchdog)
      if (ranMs === undefined) continue
      const unit = slot.units[0]!
      unit.lane.longRunSeen()
      if (this.shut || this.setAside.size < this.slots.length) this.setAsideStuck(i, ranMs)
      else if (this.capSaidFor !== unit) {
        this.capSaidFor = unit
        process.emitWarning(
          `inference worker stuck in a run of model ${slot.units[0]!.lane.key}, not set aside: ${this.setAside.size} stuck thread${this.setAside.size === 1 ? ' is' : 's are'} still running, as many as the pool has workers; its jobs wait for it until one of those ends`,
          { code: 'SPECSERVE_WORKER_STUCK' },
        )
      }
    }
  }

  /**
   * A worker stuck in a run: it takes nothing more, what it held fails MODEL_FAILED (its loads
   * too), and another worker takes its place (not while the gateway stops); its thread closes
   * once the run ends. Logged once, and counted.
   */
  private setAsideStuck(index: number, ranMs: number): void {
    const slot = this.slots[index]!
    const stuck = `inference worker stuck: a run of model ${slot.units[0]!.lane.key} has gone on for over ${(ranMs / 1000).toFixed(1)} s, past its deadline`
    const units = slot.retire(new Error(stuck))
    this.setAside.add(slot)
    this.stuck++
    const replace = this.hooks.failed(units, stuck)
    process.emitWarning(`${stuck}: set aside (it closes once that run ends)${replace ? ' and replaced' : ''}; ${held(units)}`, { code: 'SPECSERVE_WORKER_STUCK' })
    if (replace) this.replace(index)
  }

  /** A new worker at `index`, loading what the pool serves. */
  private replace(index: number): void {
    const fresh = this.spawn()
    this.slots[index] = fresh
    // What the others loaded, and the registrations under way (their loads went to the
    // worker it replaces): it takes no unit until each has answered.
    for (const lane of this.hooks.lanes()) void this.reload(fresh, lane.key, lane.path, lane.stamp)
    for (const [key, { path, stamp, loads }] of this.registering) loads.set(fresh, this.reload(fresh, key, path, stamp))
  }

  private reload(slot: Slot, key: string, path: string, stamp: string | undefined): Promise<LoadedModel> {
    const loading = slot.load(key, path, stamp, true)
    void loading.then(
      () => this.hooks.reloaded(key, true),
      (err: Error) => {
        if (this.closing) return // its loads not begun are answered `gateway closing`
        process.emitWarning(`inference worker started again after a crash or a stuck run did not load model ${key} (${err.message}): it gets none of its runs`, { code: 'SPECSERVE_WORKER_RELOAD' })
        this.hooks.reloaded(key, this.held(key))
      },
    )
    return loading
  }

  /**
   * The answer to a load of the worker at `index`, or of the one that took its place if it was
   * lost first. Only once: a load that is itself what ends its worker must not go on from one
   * replacement to the next, each started again to load it.
   */
  private async loadedAt(index: number, loads: ReadonlyMap<Slot, Promise<LoadedModel>>): Promise<LoadedModel> {
    const slot = this.slots[index]!
    try {
      return await loads.get(slot)!
    } catch (err) {
      // Still in place: its own load failed. Replaced (replace() has posted its loads): its replacement answers.
      const next = this.slots[index]!
      if (next === slot || !loads.has(next)) throw err
      return loads.get(next)!
    }
  }
}

interface Registration {
  readonly path: string
  readonly stamp: string | undefined
  /** Each worker's load of the model, a replacement's included (loadedAt). */
  readonly loads: Map<Slot, Promise<LoadedModel>>
}

/** What a worker lost held, for a warning: its runs failed MODEL_FAILED, and of which models. */
function held(units: readonly Unit[]): string {
  if (units.length === 0) return 'it held no run'
  let jobs = 0
  const models = new Set<string>()
  for (const unit of units) {
    jobs += unit.jobs.length
    models.add(unit.lane.key)
  }
  return `the ${jobs} request${jobs === 1 ? '' : 's'} it held (model ${[...models].join(', ')}) failed MODEL_FAILED`
}
