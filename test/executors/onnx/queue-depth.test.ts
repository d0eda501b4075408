// The pool's queue depth on made-up workers: a unit sent to a worker counts as waiting while
// a unit or an unanswered load is ahead of it there, and no longer once it is the worker's
// first with no load ahead, or is lost with its worker.
import { describe, expect, it } from 'vitest'
import type { Job, PoolLane, Unit } from '../../../src/executors/onnx/lane.ts'
import { QueueDepth, type Holder } from '../../../src/executors/onnx/queue-depth.ts'

/** A unit of `jobs` jobs, sent as the worker's message number `posted`. */
function unit(jobs: number, posted: number): Unit {
  const lane = {} as PoolLane
  return { id: posted, lane, jobs: Array.from({ length: jobs }, () => ({}) as Job), rows: jobs, live: jobs, sentAt: -1, flags: undefined, posted, waiting: false }
}

/** A worker holding `units`, with unanswered loads posted as these message numbers. */
function worker(units: Unit[], loads: number[] = []): Holder & { units: Unit[]; loads: number[] } {
  return { units, loads, waitsOnLoad(u) { return this.loads.some((posted) => posted < u.posted) } }
}

/** Sends `u` to `w` as the pool does: the jobs leave the lanes' queue, then the unit is counted if it waits. */
function send(depth: QueueDepth, w: Holder & { units: Unit[] }, u: Unit): void {
  depth.count -= u.jobs.length
  w.units.push(u)
  depth.sent(w, u)
}

describe('the pool queue depth', () => {
  it('does not count a unit sent to an idle worker with no load ahead of it: it runs at once', () => {
    const depth = new QueueDepth()
    depth.count = 2
    send(depth, worker([]), unit(2, 1))
    expect(depth.count).toBe(0)
  })

  it('counts a unit behind a load until that load is answered', () => {
    const depth = new QueueDepth()
    depth.count = 1
    const w = worker([], [1])
    const u = unit(1, 2)
    send(depth, w, u)
    expect(depth.count).toBe(1)
    w.loads.length = 0
    depth.moved(w)
    expect([depth.count, u.waiting]).toEqual([0, false])
    depth.moved(w) // counted off once
    expect(depth.count).toBe(0)
  })

  it('counts a unit behind a run, then behind a load sent between them, until both are answered', () => {
    const depth = new QueueDepth()
    depth.count = 4
    const w = worker([])
    const first = unit(1, 1)
    send(depth, w, first)
    w.loads.push(2)
    const second = unit(3, 3)
    send(depth, w, second)
    expect(depth.count).toBe(3)
    w.units.shift() // the first answered: the load is next
    depth.moved(w)
    expect(depth.count).toBe(3)
    w.loads.length = 0
    depth.moved(w)
    expect(depth.count).toBe(0)
  })

  it('counts off the units of a lost worker that were waiting, and only those', () => {
    const depth = new QueueDepth()
    depth.count = 3
    const w = worker([])
    const running = unit(1, 1)
    const waiting = unit(2, 2)
    send(depth, w, running)
    send(depth, w, waiting)
    expect(depth.count).toBe(2)
    for (const u of w.units.splice(0)) depth.lost(u)
    expect(depth.count).toBe(0)
  })
})
