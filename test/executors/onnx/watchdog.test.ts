// When the pool's watchdog calls a worker stuck, on made-up clocks: the unit it runs has gone
// on past its deadline (or past when it was first seen running, if later) by more than
// max(floorMs, runs × the model's p99 run), a unit behind an unanswered load not counting.
import { describe, expect, it } from 'vitest'
import { PoolLane, type Job, type Unit } from '../../../src/executors/onnx/lane.ts'
import { stuckFor, WATCHDOG, type Watched } from '../../../src/executors/onnx/watchdog.ts'

const settings = { ...WATCHDOG, floorMs: 5000, runs: 10 }

/** A unit of `lane` whose jobs have these deadlines. */
function unitOf(lane: PoolLane, ...deadlines: number[]): Unit {
  const jobs = deadlines.map((deadline) => ({ lane, deadline }) as unknown as Job)
  return { id: 1, lane, jobs, rows: jobs.length, live: jobs.length, sentAt: 0, flags: undefined, posted: 1, waiting: false }
}

/** A worker holding `units`, the first running; `behindLoad`: its first waits behind a load. */
function worker(units: Unit[], behindLoad = false): Watched & { units: Unit[]; behindLoad: boolean } {
  return { units, behindLoad, watched: undefined, watchedSince: 0, waitsOnLoad() { return this.behindLoad } }
}

const fastLane = (): PoolLane => {
  const lane = new PoolLane('fast', 'fast.onnx', Infinity, undefined, [0.1])
  for (let i = 0; i < 20; i++) lane.observe(1, 1, 0.2)
  return lane
}

describe('the pool watchdog', () => {
  it('calls a run stuck once it has gone on past its deadline by the floor, and says how long it has been seen running', () => {
    const w = worker([unitOf(fastLane(), 100)])
    expect(stuckFor(w, 0, settings)).toBeUndefined() // first seen
    expect(stuckFor(w, 5100, settings)).toBeUndefined() // 5 s past its deadline: not more
    expect(stuckFor(w, 5101, settings)).toBe(5101)
  })

  it('counts from the latest deadline of a batch', () => {
    const w = worker([unitOf(fastLane(), 100, 3000, 200)])
    stuckFor(w, 0, settings)
    expect(stuckFor(w, 7900, settings)).toBeUndefined()
    expect(stuckFor(w, 8001, settings)).toBe(8001)
  })

  it('gives a model whose runs are long ten of its 99th-percentile runs past the deadline, when that is more than the floor', () => {
    const lane = new PoolLane('slow', 'slow.onnx', Infinity, undefined, [800])
    for (let i = 0; i < 20; i++) lane.observe(1, 1, 900 + i * 5) // p99 995 ms
    const w = worker([unitOf(lane, 1000)])
    stuckFor(w, 0, settings)
    expect(stuckFor(w, 1000 + 9000, settings)).toBeUndefined()
    expect(stuckFor(w, 1000 + 9951, settings)).toBeGreaterThan(0)
  })

  it('counts from when it was first seen running if that came after its deadline (it waited in the worker)', () => {
    const first = unitOf(fastLane(), 100)
    const second = unitOf(fastLane(), 200)
    const w = worker([first, second])
    stuckFor(w, 0, settings)
    // The first ends late; the second, its deadline long past, starts now: it is given its time too.
    w.units.shift()
    expect(stuckFor(w, 10_000, settings)).toBeUndefined()
    expect(stuckFor(w, 15_000, settings)).toBeUndefined()
    expect(stuckFor(w, 15_001, settings)).toBe(5001)
  })

  it('does not count the time a unit waits behind a load the worker has not answered', () => {
    const w = worker([unitOf(fastLane(), 100)], true)
    for (const now of [0, 10_000, 60_000]) expect(stuckFor(w, now, settings)).toBeUndefined()
    w.behindLoad = false // the load is answered: the run begins
    expect(stuckFor(w, 61_000, settings)).toBeUndefined()
    expect(stuckFor(w, 66_000, settings)).toBeUndefined()
    expect(stuckFor(w, 66_001, settings)).toBe(5001)
  })

  it('calls nothing stuck in an idle worker, and forgets a run once it is answered', () => {
    const w = worker([])
    expect(stuckFor(w, 1e9, settings)).toBeUndefined()
    w.units.push(unitOf(fastLane(), 100))
    stuckFor(w, 0, settings)
    w.units[0] = unitOf(fastLane(), 100) // answered, and another of the same deadline sent
    expect(stuckFor(w, 5200, settings)).toBeUndefined()
    expect(stuckFor(w, 10_201, settings)).toBe(5001)
  })
})
