// The dispatcher's hop measure on made-up workers: a unit's round trip measures the pool's hop
// only when its worker begins it at once. One sent to a worker busy with another unit, or with
// a model load it has not answered, waits there: its sentAt is -1, so that wait (a whole load,
// maybe) never counts as hop, which batching keeps in hand for every batch.
import { describe, expect, it } from 'vitest'
import { Dispatcher } from '../../../src/executors/onnx/dispatch.ts'
import { PoolLane, type Job, type Unit } from '../../../src/executors/onnx/lane.ts'
import { QueueDepth } from '../../../src/executors/onnx/queue-depth.ts'
import type { Slot } from '../../../src/executors/onnx/workers.ts'

/** A worker holding `units`, with unanswered loads posted as these message numbers. */
function worker(units: Unit[] = [], loads: number[] = []): Slot & { units: Unit[]; loads: number[] } {
  let posted = 0
  const fake = {
    units,
    loads,
    lacks: false,
    models: new Set<string>(),
    full: (depth: number) => fake.units.length >= depth,
    send(unit: Unit) {
      unit.posted = ++posted
      fake.units.push(unit)
    },
    flush: () => undefined,
    waitsOnLoad: (unit: Unit) => fake.loads.some((p) => p < unit.posted),
  }
  return fake as unknown as Slot & { units: Unit[]; loads: number[] }
}

/** Queues one job on `lane`, counted in `depth` as the pool does. */
function queue(lane: PoolLane, depth: QueueDepth): void {
  const job: Job = {
    lane,
    inputs: { input: { datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) } },
    rows: 1,
    deadline: performance.now() + 10_000,
    signal: new AbortController().signal,
    enqueuedAt: performance.now(),
    resolve: () => undefined,
    reject: () => undefined,
    queued: true,
    unit: null,
    probe: false,
  }
  lane.queue.push(job)
  depth.count++
}

/** Dispatches what is queued to `slot` (one dispatch, after this turn's microtasks). */
async function dispatched(slot: Slot, lane: PoolLane, depth: QueueDepth): Promise<Unit> {
  const dispatcher = new Dispatcher(new Map([[lane.key, lane]]), [slot], depth)
  const before = slot.units.length
  dispatcher.schedule()
  await Promise.resolve()
  expect(slot.units.length).toBe(before + 1)
  return slot.units.at(-1)!
}

describe('the dispatcher\'s hop measure', () => {
  it('takes the round trip of a unit its idle worker begins at once', async () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined)
    const depth = new QueueDepth()
    queue(lane, depth)
    const unit = await dispatched(worker(), lane, depth)
    expect(unit.sentAt).toBeGreaterThanOrEqual(0)
    expect([unit.waiting, depth.count]).toEqual([false, 0])
  })

  it('not that of a unit waiting in an idle worker behind a model load it has not answered', async () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined)
    const depth = new QueueDepth()
    queue(lane, depth)
    // A load sent before the unit (message 0): the worker runs it first.
    const unit = await dispatched(worker([], [0]), lane, depth)
    expect(unit.sentAt).toBe(-1)
    expect([unit.waiting, depth.count]).toEqual([true, 1])
  })
})
