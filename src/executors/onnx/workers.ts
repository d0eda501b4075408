// The pool's worker threads: a WorkerSlot each, the models they load and from which file,
// and a crashed worker's replacement. Every worker loads a model's file as it was when the
// model was registered (its stamp, src/file-stamp.ts), a replacement included: that one must not
// answer for a version with a file replaced on disk since, so it loads that file or nothing,
// and then gets none of that model's units (pool.ts, sendNext). A crash is logged (warning
// SPECSERVE_WORKER_CRASH) and counted (specserve_onnx_worker_restarts_total).
import { stampOf } from '../../file-stamp.ts'
import type { PoolLane, Unit } from './lane.ts'
import type { WorkerAnswer } from './protocol.ts'
import { WorkerSlot, type LoadedModel } from './slot.ts'

export type Slot = WorkerSlot<Unit>

/** What the pool does about its workers' answers and crashes. */
export interface WorkerHooks {
  message(slot: Slot, msg: WorkerAnswer): void
  /** A worker crashed holding these units (never to be answered): they fail with `message`; false: do not replace it (closing). */
  failed(units: Unit[], message: string): boolean
  /** The models a replacement is to load. */
  lanes(): Iterable<PoolLane>
  /** One of a replacement's loads answered: does some worker still have the model (or a load of it to answer)? */
  reloaded(key: string, held: boolean): void
}

export class PoolWorkers {
  /** One per worker, in place: a crashed worker's slot is replaced at its index. */
  readonly slots: Slot[] = []
  private readonly nice: number
  private readonly hooks: WorkerHooks
  /** Models being registered (not lanes yet): a replacement started meanwhile loads them too. */
  private readonly registering = new Map<string, { readonly path: string; readonly stamp: string | undefined }>()
  private closing = false
  /** Workers started again after a crash. */
  private restarts = 0

  constructor(size: number, nice: number, hooks: WorkerHooks) {
    this.nice = nice
    this.hooks = hooks
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
  }

  /** Loads a model into every worker from the file as it is now; rejects if one fails (the others then unload it). */
  async loadAll(key: string, path: string): Promise<{ loaded: LoadedModel; stamp: string | undefined }> {
    const stamp = await stampOf(path)
    this.registering.set(key, { path, stamp })
    try {
      const loaded = await Promise.all(this.slots.map((slot) => slot.load(key, path, stamp)))
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

  /** Workers holding a unit, the fewest nice steps one reported it runs below the event loop, and the crashes. */
  stats(): { busy: number; nice: number; restarts: number } {
    let busy = 0
    let nice = this.nice
    for (const slot of this.slots) {
      if (slot.units.length) busy++
      if (slot.nice !== undefined) nice = Math.min(nice, slot.nice)
    }
    return { busy, nice, restarts: this.restarts }
  }

  /** Loads not begun are refused from now on (a stop during the first load need not wait for them). */
  beginClose(): void {
    this.closing = true
    for (const slot of this.slots) slot.beginClose()
  }

  async close(): Promise<void> {
    this.beginClose()
    await Promise.all(this.slots.map((slot) => slot.close()))
  }

  private spawn(): Slot {
    const slot = new WorkerSlot<Unit>(this.nice, this.hooks.message, (slot, err) => this.onCrash(slot, err))
    // A worker replaced while the gateway stops takes no load either.
    if (this.closing) slot.beginClose()
    return slot
  }

  private onCrash(slot: Slot, err: Error): void {
    const index = this.slots.indexOf(slot)
    if (index < 0) return // already replaced ('error' is followed by 'exit')
    const units = slot.drain(err)
    // Not while the gateway stops: its workers exit then, and this is how their exit is seen.
    if (!this.hooks.failed(units, `inference worker crashed: ${err.message}`)) return
    this.restarts++
    process.emitWarning(`inference worker crashed (${err.message}) and was started again: ${held(units)}`, { code: 'SPECSERVE_WORKER_CRASH' })
    const fresh = this.spawn()
    this.slots[index] = fresh
    // What the others loaded, and the registrations under way (their loads went to the
    // worker it replaces): it takes no unit until each has answered.
    for (const lane of this.hooks.lanes()) this.reload(fresh, lane.key, lane.path, lane.stamp)
    for (const [key, { path, stamp }] of this.registering) this.reload(fresh, key, path, stamp)
  }

  private reload(slot: Slot, key: string, path: string, stamp: string | undefined): void {
    slot.load(key, path, stamp, true).then(
      () => this.hooks.reloaded(key, true),
      (err: Error) => {
        if (this.closing) return // its loads not begun are answered `gateway closing`
        process.emitWarning(`inference worker started again after a crash did not load model ${key} (${err.message}): it gets none of its runs`, { code: 'SPECSERVE_WORKER_RELOAD' })
        this.hooks.reloaded(key, this.held(key))
      },
    )
  }
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
