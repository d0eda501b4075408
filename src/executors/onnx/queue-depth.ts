// The pool's queue depth (specserve_onnx_queue_depth, held under the pool's queue limit): the
// jobs waiting in the models' queues on the main thread, and those sent to a worker that has
// not begun them. A worker runs what it is sent in order, units and loads alike, so a unit it
// holds waits behind the unit before it (pipelined) and behind any load sent before it that
// it has not answered: only its first unit can be running, and only once no such load is left.
import type { Unit } from './lane.ts'
import { begun, type Holder } from './slot.ts'

/** What the count reads of a worker (slot.ts, shared with the watchdog). */
export type { Holder }

export class QueueDepth {
  /** Jobs waiting: in the lanes' queues, and inside a worker that has not begun their unit. */
  count = 0

  /** A unit just sent to `slot` (its last): it waits there if another unit or a load is ahead of it. */
  sent(slot: Holder<Unit>, unit: Unit): void {
    if (slot.units.length === 1 && !slot.waitsOnLoad(unit)) return
    unit.waiting = true
    this.count += unit.jobs.length
  }

  /** A unit or a load `slot` held was answered: its first unit may begin now. */
  moved(slot: Holder<Unit>): void {
    const head = begun(slot)
    if (head === undefined || !head.waiting) return
    head.waiting = false
    this.count -= head.jobs.length
  }

  /** A unit that will never be begun (its worker crashed or was set aside). */
  lost(unit: Unit): void {
    if (!unit.waiting) return
    unit.waiting = false
    this.count -= unit.jobs.length
  }
}
