// When a worker is stuck: the run it is in has gone on far past its deadline (an endless or
// very long inference). onnxruntime cannot interrupt a run, and terminating a thread inside
// one aborts the process, so such a worker is set aside instead (workers.ts): the pool sends
// it nothing more, another takes its place, and its thread closes once that run ends. One
// timer per pool looks at each worker's running unit now and then: nothing per request.
import type { Unit } from './lane.ts'
import { begun, type Holder } from './slot.ts'

export interface WatchdogSettings {
  /** How often the workers are looked at (ms). */
  readonly everyMs: number
  /** A run is stuck once it has gone on past its deadline by this (ms)... */
  readonly floorMs: number
  /** ...or by this many times the model's 99th-percentile run in the workers, if that is longer. */
  readonly runs: number
}

/** A worker is stuck past deadline + max(5 s, 10 × its model's p99 run); looked at every second. */
export const WATCHDOG: WatchdogSettings = Object.freeze({ everyMs: 1000, floorMs: 5000, runs: 10 })

/** What the watchdog reads of a worker (slot.ts), and notes on it between looks. */
export interface Watched extends Holder<Unit> {
  /** The unit seen running at the last look (undefined: none), and since when. */
  watched: Unit | undefined
  watchedSince: number
}

/**
 * How long the worker's running unit has been seen running (ms), if it is stuck: past its
 * deadline, or past the moment it was first seen running if that came later (it may have
 * waited in the worker), by more than the settings allow. Undefined if not.
 */
export function stuckFor(slot: Watched, now: number, settings: WatchdogSettings): number | undefined {
  // A unit behind a load begins once the load is answered: its time is counted from then.
  const head = begun(slot)
  if (head === undefined) {
    slot.watched = undefined
    return undefined
  }
  if (slot.watched !== head) {
    slot.watched = head
    slot.watchedSince = now
    return undefined
  }
  const overMs = now - Math.max(latestDeadline(head), slot.watchedSince)
  if (overMs <= settings.floorMs) return undefined
  const times = head.lane.times
  // Only for a run already past the floor: the sort behind a quantile is then worth it.
  if (times.count > 0 && overMs <= settings.runs * times.quantile(0.99)) return undefined
  return now - slot.watchedSince
}

/** The latest deadline among a unit's jobs (a batch runs for all of them). */
function latestDeadline(unit: Unit): number {
  let latest = -Infinity
  for (const job of unit.jobs) if (job.deadline > latest) latest = job.deadline
  return latest
}
