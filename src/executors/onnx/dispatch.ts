// Which unit goes to which worker, and when. Dispatch runs once per turn of the event loop (a
// microtask), so every unit handed to one worker in that turn (the co-located members of an
// ensemble's request) goes in one message. Idle workers first, each given the unit of the
// model whose waiting job has the earliest deadline. Then fast models are pipelined: a worker
// holds up to four of their units, so it never idles for a message round trip and a request's
// fast members travel together; a unit waiting inside a worker can still be cancelled through
// a shared flag the worker reads before it starts it. Fast is by a model's runs (lane.ts: most
// of its recent ones tiny, none long of late): a slow, untimed or input-dependent model's
// units go one per idle worker, never behind another in a worker. A model with batching runs
// the jobs waiting together as one batch, sent when lane.ts says it is due.
import type { PoolLane, Unit } from './lane.ts'
import { wireInputs } from './protocol.ts'
import type { QueueDepth } from './queue-depth.ts'
import { nextUnitId } from './slot.ts'
import type { Slot } from './workers.ts'

/** Units a worker may hold at once (running + waiting), when they are all fast. */
const PIPELINE_DEPTH = 4

export class Dispatcher {
  private readonly lanes: ReadonlyMap<string, PoolLane>
  /** The workers' slots (workers.ts: a crashed one's is replaced in place). */
  private readonly slots: readonly Slot[]
  private readonly depth: QueueDepth
  private nextId = 1
  private scheduled = false
  /** How late batch wake-ups have fired, smoothed (ms); starts at a timer's usual granularity. */
  private lateMs = 1
  /** A unit's time in the pool beyond its run (messages, thread wake-ups), smoothed (ms). */
  private hopMs = 1

  constructor(lanes: ReadonlyMap<string, PoolLane>, slots: readonly Slot[], depth: QueueDepth) {
    this.lanes = lanes
    this.slots = slots
    this.depth = depth
  }

  /** Dispatch once, after everything this turn has queued. */
  schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    queueMicrotask(this.dispatch)
  }

  /** Sends at once what this turn has handed over, if a dispatch is due (the pool closes next). */
  flush(): void {
    if (this.scheduled) this.dispatch()
  }

  /** A unit answered with a run of `runMs`: if its worker began it at once, its round trip measures the hop. */
  answered(unit: Unit, runMs: number): void {
    if (unit.sentAt >= 0) this.hopMs = this.hopMs * 0.9 + Math.max(0, performance.now() - unit.sentAt - runMs) * 0.1
  }

  /**
   * Idle workers first, then more units for workers holding only fast ones (up to
   * PIPELINE_DEPTH, so all of a request's fast members can go to one worker at once); then
   * one message per worker.
   */
  private readonly dispatch = (): void => {
    this.scheduled = false
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
      const unit = best.nextUnit(now, this.nextId)
      this.depth.count -= taken - best.queue.length
      if (!unit) continue
      this.nextId = nextUnitId(this.nextId)
      best.inflight++
      slot.send(unit, best.key, unit.jobs.map((j) => wireInputs(j.inputs)))
      this.depth.sent(slot, unit)
      // Behind another unit or a load there: its round trip would count that wait as hop.
      if (unit.waiting) unit.sentAt = -1
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
}

function allPipelined(units: readonly Unit[]): boolean {
  for (const unit of units) if (!unit.lane.pipelined) return false
  return true
}
