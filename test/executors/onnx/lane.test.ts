// When a model's lane refuses a job it predicts would miss its deadline (WOULD_MISS_DEADLINE),
// on made-up clocks and run times. The figures are diabetes-knn's on the shared 2-core box: a
// warm-up of ~0.4 ms runs, then a first real run slowed to 8.3 ms by the machine, after which
// every 5 ms request used to be refused ("needs ~8.3 ms, 4.8 ms left") and none ever ran again.
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { PoolLane, type Job } from '../../../src/executors/onnx/lane.ts'
import { wouldMiss } from '../../../src/executors/onnx/run-floor.ts'
import type { ModelError } from '../../../src/errors.ts'

const WARM_UP = [0.383, 0.39, 0.39, 0.41, 0.43, 0.44, 1.04, 4.07]

interface Outcome {
  error: ModelError | undefined
}

const job = (lane: PoolLane, deadline: number, outcome: Outcome = { error: undefined }, probe = false): Job => ({
  lane,
  inputs: { input: { datatype: 'FP32', shape: [1, 10], data: new Float32Array(10) } },
  rows: 1,
  deadline,
  signal: new AbortController().signal,
  enqueuedAt: 0,
  resolve: () => undefined,
  reject: (err) => (outcome.error = err as ModelError),
  queued: true,
  unit: null,
  probe,
})

/** A real run of one row that took `runMs`, as the pool reports a worker's answer. */
const ran = (lane: PoolLane, runMs: number): void => lane.observe(1, 1, runMs)

/** Queues a job with `leftMs` left at time 0 and dispatches it: undefined when it went to a worker, else the refusal. */
function dispatch(lane: PoolLane, leftMs: number): ModelError | undefined {
  const outcome: Outcome = { error: undefined }
  lane.queue.push(job(lane, leftMs, outcome))
  const unit = lane.nextUnit(0, 1)
  return unit ? undefined : outcome.error
}

describe('refusing a job that cannot finish in time', () => {
  it('does not let one slow first run shut a model out of every budget its warm-up fits', () => {
    const lane = new PoolLane('diabetes-knn', 'knn.onnx', Infinity, undefined, WARM_UP)
    ran(lane, 8.3)
    ran(lane, 9.1)
    expect(dispatch(lane, 5)).toBeUndefined()
    // The floor is the fastest run seen, warm-up included: a job with less time than that still goes.
    expect(dispatch(lane, 0.2)).toMatchObject({ code: 'WOULD_MISS_DEADLINE', message: 'needs ~0.383 ms, 0.200 ms left' })
  })

  it('says a budget already spent, not "needs ~0.000 ms", while nothing is measured', () => {
    expect(wouldMiss(0, -0.411)).toMatchObject({ code: 'WOULD_MISS_DEADLINE', message: 'no budget left (-0.411 ms)' })
  })

  it('goes by the real runs alone once there are enough of them: zeros may cost less than the data', () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined, WARM_UP)
    for (let i = 0; i < 7; i++) ran(lane, 8 + i)
    expect(dispatch(lane, 5)).toBeUndefined()
    ran(lane, 8.5)
    expect(dispatch(lane, 5)).toMatchObject({ code: 'WOULD_MISS_DEADLINE', message: 'needs ~8.0 ms, 5.0 ms left' })
  })

  it('lets one job through once a second has passed without a run, and a fast run there lifts the floor', () => {
    // The lane stamps its runs with performance.now(): frozen, so a stalled test process cannot age them.
    vi.useFakeTimers({ toFake: ['performance'] })
    onTestFinished(() => void vi.useRealTimers())
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined, WARM_UP)
    for (let i = 0; i < 8; i++) ran(lane, 8.3)
    const lastRun = performance.now()
    for (let i = 0; i < 1000; i++) expect(lane.refuses(5, lastRun + i * 0.9)).toBe(true)
    expect(lane.refuses(5, lastRun + 1000)).toBe(false)
    // One probe a second, however many jobs ask.
    expect(lane.refuses(5, lastRun + 1000.5)).toBe(true)
    // The probe is not refused again when it reaches a worker.
    lane.queue.push(job(lane, 5, undefined, true))
    expect(lane.nextUnit(0, 1)).toBeDefined()
    ran(lane, 0.45)
    expect(lane.refuses(5, lastRun + 1001)).toBe(false)
    expect(dispatch(lane, 5)).toBeUndefined()
  })

  it('never probes a model whose warm-up agrees with its floor: a real straggler stays refused', () => {
    const lane = new PoolLane('slow', 'slow.onnx', Infinity, undefined, [98, 100, 105])
    for (let i = 0; i < 8; i++) ran(lane, 101)
    const lastRun = performance.now()
    for (const later of [1000, 5000, 60_000]) expect(lane.refuses(20, lastRun + later)).toBe(true)
  })

  it('never refuses a job that fits, whatever the time since the last run', () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined, WARM_UP)
    for (let i = 0; i < 8; i++) ran(lane, 8.3)
    const lastRun = performance.now()
    expect(lane.refuses(20, lastRun)).toBe(false)
    expect(lane.refuses(5, lastRun + 1)).toBe(true)
  })

  it('refuses nothing before the first real run, then what neither it nor the warm-up could have made', () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined, [120, 130])
    expect(lane.refuses(0.01, performance.now())).toBe(false)
    ran(lane, 150)
    expect(lane.refuses(20, performance.now())).toBe(true)
    expect(lane.refuses(121, performance.now())).toBe(false)
  })
})

describe('the order a model runs its jobs in', () => {
  it('runs a short-budget job before a long-budget one of the same model queued ahead of it (earliest deadline first)', () => {
    const lane = new PoolLane('cancer_slow', 'slow.onnx', 1, undefined, [45])
    const longBudget = job(lane, 4500)
    const shortBudget = job(lane, 112)
    lane.queue.push(longBudget)
    lane.queue.push(shortBudget)
    expect(lane.nextUnit(0, 1)!.jobs).toEqual([shortBudget])
    expect(lane.nextUnit(45, 2)!.jobs).toEqual([longBudget])
  })
})

describe('whether a job of the model may wait inside a worker (pipelined)', () => {
  it('not before a real run, and then while its recent runs are fast', () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined, [0.05, 0.06])
    expect(lane.pipelined).toBe(false)
    for (let i = 0; i < 20; i++) ran(lane, 0.05)
    expect(lane.pipelined).toBe(true)
  })

  it('not for a model whose cost depends on its input: fast at the median and by its fastest run, seconds on some inputs', () => {
    // The audit's model: 0.46 ms at the median, 3 s on a rare input.
    const lane = new PoolLane('input-dependent', 'm.onnx', Infinity, undefined, [0.4, 0.45])
    for (let i = 0; i < 126; i++) ran(lane, i % 2 ? 0.46 : 0.4)
    expect(lane.pipelined).toBe(true)
    ran(lane, 3006)
    expect(lane.minRunMs).toBeLessThan(0.5)
    expect(lane.times.quantile(0.5)).toBeLessThan(0.5)
    expect(lane.pipelined).toBe(false)
  })

  it('again after 1024 runs since its last long one (over 25 ms); runs of a few ms, a busy box preempting a tiny model, are not long', () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined, [0.05])
    ran(lane, 40)
    for (let i = 0; i < 1023; i++) ran(lane, i % 50 ? 0.05 : 12) // one in 50 preempted for 12 ms
    expect(lane.pipelined).toBe(false)
    ran(lane, 0.05)
    expect(lane.pipelined).toBe(true)
    ran(lane, 20)
    expect(lane.pipelined).toBe(true)
    ran(lane, 26)
    expect(lane.pipelined).toBe(false)
  })

  it('not for a model whose runs are mostly slow, however fast one of them was', () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined, [0.3])
    ran(lane, 1.5)
    for (let i = 0; i < 2000; i++) ran(lane, 18 + (i % 7))
    expect(lane.minRunMs).toBe(1.5)
    expect(lane.pipelined).toBe(false)
  })

  it('not after a run set aside as stuck, which is never answered', () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined, [0.05])
    for (let i = 0; i < 20; i++) ran(lane, 0.05)
    expect(lane.pipelined).toBe(true)
    lane.longRunSeen()
    expect(lane.pipelined).toBe(false)
  })

  it('never for a batching model: its batch would form early', () => {
    const lane = new PoolLane('b', 'b.onnx', Infinity, { maxBatch: 8, maxDelayMs: 2 }, [0.05])
    for (let i = 0; i < 20; i++) ran(lane, 0.05)
    expect(lane.pipelined).toBe(false)
  })
})
