// Dynamic batching's pure parts: stacking requests' inputs along the batch dimension and
// cutting the outputs back, and when a waiting batch must go (lane.ts), on made-up clocks.
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { BatchTimes, checkBatchDimension, stack, stackable, unstack } from '../../../src/executors/onnx/batch.ts'
import { PoolLane, type Job } from '../../../src/executors/onnx/lane.ts'
import type { Tensor, TensorMap } from '../../../src/tensor/index.ts'

const fp32 = (rows: number[][]): TensorMap => ({ x: { datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) } })

describe('stacking requests', () => {
  it('needs a dynamic first dimension on every input and output, which a tensor of any rank does not declare', () => {
    const rows = { name: 'y', datatype: 'FP32', shape: [-1, 2] } as const
    expect(() => checkBatchDimension({ inputs: [rows], outputs: [rows] })).not.toThrow()
    expect(() => checkBatchDimension({ inputs: [{ name: 'x', datatype: 'FP32', shape: [], anyRank: true }], outputs: [rows] })).toThrow(
      'batching needs a dynamic first (batch) dimension on every input and output: "x" has no declared shape (any rank)',
    )
    expect(() => checkBatchDimension({ inputs: [rows], outputs: [{ name: 'z', datatype: 'FP32', shape: [3, 2] }] })).toThrow('"z" has shape [3, 2]')
  })

  it('stacks inputs along the first dimension and cuts every batched output back into each request\'s rows', () => {
    const a = fp32([[1, 2]])
    const b = fp32([[3, 4], [5, 6]])
    const stacked = stack([a, b], 3)
    expect(stacked.x!.shape).toEqual([3, 2])
    expect(Array.from(stacked.x!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6])
    const outputs: TensorMap = {
      label: { datatype: 'INT64', shape: [3], data: BigInt64Array.from([7n, 8n, 9n]) },
      probabilities: { datatype: 'FP32', shape: [3, 2], data: Float32Array.from([0.1, 0.9, 0.2, 0.8, 0.3, 0.7]) },
      names: { datatype: 'BYTES', shape: [3], data: ['p', 'q', 'r'] },
    }
    const [first, second] = unstack(outputs, [1, 2])
    expect(first!.label).toEqual({ datatype: 'INT64', shape: [1], data: BigInt64Array.from([7n]) })
    expect(Array.from(second!.label!.data as BigInt64Array)).toEqual([8n, 9n])
    expect(second!.probabilities!.shape).toEqual([2, 2])
    expect(Array.from(second!.probabilities!.data as Float32Array)).toEqual(Array.from(Float32Array.from([0.2, 0.8, 0.3, 0.7])))
    expect(second!.names!.data).toEqual(['q', 'r'])
  })

  it('refuses to cut an output whose first dimension is not the batch (it would hand one request the others\' answers)', () => {
    const outputs: TensorMap = { boxes: { datatype: 'FP32', shape: [5, 4], data: new Float32Array(20) } }
    expect(() => unstack(outputs, [1, 2])).toThrow('output "boxes" has shape [5, 4], not 3 rows first')
  })

  it('stacks only requests with the same inputs, datatypes and trailing dimensions', () => {
    expect(stackable(fp32([[1, 2]]), fp32([[3, 4], [5, 6]]))).toBe(true)
    expect(stackable(fp32([[1, 2]]), fp32([[1, 2, 3]]))).toBe(false)
    const int: TensorMap = { x: { datatype: 'INT32', shape: [1, 2], data: Int32Array.from([1, 2]) } }
    expect(stackable(fp32([[1, 2]]), int)).toBe(false)
    expect(stackable(fp32([[1, 2]]), { ...fp32([[1, 2]]), y: fp32([[1, 2]]).x as Tensor })).toBe(false)
    const scalar: TensorMap = { x: { datatype: 'FP32', shape: [], data: Float32Array.from([1]) } }
    expect(stackable(scalar, scalar)).toBe(false)
  })

  it('never stacks a request whose inputs disagree on their rows, before or after another: it runs alone', () => {
    const two = (aRows: number, bRows: number): TensorMap => ({
      a: { datatype: 'FP32', shape: [aRows, 1], data: new Float32Array(aRows) },
      b: { datatype: 'FP32', shape: [bRows, 1], data: new Float32Array(bRows) },
    })
    expect(stackable(two(1, 1), two(2, 2))).toBe(true)
    for (const [x, y] of [[two(2, 1), two(1, 1)], [two(1, 1), two(1, 2)], [two(2, 1), two(1, 2)]] as const) {
      expect(stackable(x, y)).toBe(false)
    }
  })
})

describe('run time by batch size', () => {
  it('estimates an unmeasured size from the nearest smaller one, scaled as if rows cost linearly', () => {
    const times = new BatchTimes()
    expect(times.estimate(4)).toBe(0)
    times.seed(1, 0.2)
    expect(times.estimate(1)).toBe(0.2)
    expect(times.estimate(8)).toBeCloseTo(1.6)
    times.observe(8, 0.4)
    expect(times.estimate(7)).toBe(0.4) // 5-8 share a bucket
    expect(times.estimate(16)).toBeCloseTo(0.8)
    expect(times.describe()).toEqual({ '5-8': { runs: 1, ms: 0.4 } }) // the seed is no run
  })
})

const job = (lane: PoolLane, rows: number, deadline: number, enqueuedAt = 0, width = 2): Job => ({
  lane,
  inputs: { x: { datatype: 'FP32', shape: [rows, width], data: new Float32Array(rows * width) } },
  rows,
  deadline,
  signal: new AbortController().signal,
  enqueuedAt,
  resolve: () => undefined,
  reject: () => undefined,
  queued: true,
  unit: null,
  probe: false,
})

const enqueue = (lane: PoolLane, ...jobs: Job[]): void => {
  for (const j of jobs) lane.queue.push(j)
}

const batchingLane = (maxBatch = 8, maxDelayMs = 5, singleRowMs = 2): PoolLane => {
  const lane = new PoolLane('m', 'm.onnx', Infinity, { maxBatch, maxDelayMs })
  lane.batchTimes.seed(1, singleRowMs)
  return lane
}

describe('when a waiting batch goes', () => {
  it('waits up to max_queue_delay_ms from its oldest request when deadlines are far', () => {
    const lane = batchingLane()
    enqueue(lane, job(lane, 1, 1000, 10), job(lane, 1, 1000, 12))
    expect(lane.waitLeft(10)).toBe(5)
    expect(lane.waitLeft(13)).toBe(2)
    expect(lane.waitLeft(15)).toBe(0)
  })

  it('never waits past the point where its earliest deadline could be missed, given the run time for its rows', () => {
    const lane = batchingLane(8, 50)
    enqueue(lane, job(lane, 1, 100), job(lane, 1, 20))
    // Two rows: 2 × 2 ms estimated, plus 2 ms and half the run kept in hand: leave by 20 − 4 − 2 − 2 = 12.
    expect(lane.waitLeft(0)).toBe(12)
    // The pool's measured overhead (hop, late wake-ups) is kept in hand too.
    expect(lane.waitLeft(0, 3)).toBe(9)
    lane.batchTimes.observe(2, 1)
    expect(lane.waitLeft(0)).toBeCloseTo(20 - 1 - 2 - 0.5)
  })

  it('leaves early for a request behind it that cannot join it, in time for both runs', () => {
    const lane = batchingLane(4, 1000)
    // A has 5 s; B, four rows (1 + 4 > max_batch: it cannot join A's batch), has 100 ms and must wait for A's batch to go.
    enqueue(lane, job(lane, 1, 5000), job(lane, 4, 100))
    // A's run (2 ms) then B's (4 rows: 8 ms), with half of both and 2 ms kept in hand: leave by 100 − 15 − 2 = 83.
    expect(lane.waitLeft(0)).toBe(83)
    // The same for a request with other trailing dimensions, and for one bigger than max_batch (it runs alone).
    const other = batchingLane(4, 1000)
    enqueue(other, job(other, 1, 5000), job(other, 1, 1000), job(other, 1, 60, 0, 3), job(other, 9, 900))
    // The head's batch: two rows (4 ms); the narrower request: one row (2 ms).
    expect(other.waitLeft(0)).toBe(60 - (4 + 2) * 1.5 - 2)
    // Once it is cancelled, the nine rows (9-16 rows: 2 ms × 16, the safe side) set the time.
    other.queue.remove(other.queue.at(2)!)
    expect(other.waitLeft(0)).toBe(900 - (4 + 32) * 1.5 - 2)
  })

  it('sends the head\'s batch, then the urgent one behind it, before the urgent one\'s deadline (not when the head\'s max_queue_delay_ms ends)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    onTestFinished(() => void vi.useRealTimers())
    const lane = batchingLane(4, 1000)
    const start = performance.now()
    enqueue(lane, job(lane, 1, start + 5000, start), job(lane, 4, start + 100, start))
    const sent: { rows: number[]; atMs: number }[] = []
    const dispatch = (): void => {
      while (lane.queue.length && lane.batchDue(performance.now(), 0, dispatch)) sent.push({ rows: lane.take().map((j) => j.rows), atMs: performance.now() - start })
    }
    dispatch()
    vi.runAllTimers()
    expect(sent.map((s) => s.rows)).toEqual([[1], [4]])
    // Before the four rows' latest start (83 ms), and not much before: A waited for company as long as B allowed.
    for (const { atMs } of sent) expect(atMs).toBeGreaterThan(70)
    for (const { atMs } of sent) expect(atMs).toBeLessThanOrEqual(83)
  })

  it('goes at once when full, and takes at most max_batch rows of requests that stack', () => {
    const lane = batchingLane(4)
    const wider = job(lane, 1, 1000, 0, 3)
    enqueue(lane, job(lane, 1, 1000), job(lane, 2, 1000), wider, job(lane, 1, 1000))
    expect(lane.waitLeft(0)).toBe(5) // 3 rows stack (the third request has other dimensions)
    lane.queue.remove(wider)
    expect(lane.waitLeft(0)).toBe(0) // 4 rows: full
    expect(lane.take().map((j) => j.rows)).toEqual([1, 2, 1])
    enqueue(lane, job(lane, 3, 1000), job(lane, 2, 1000))
    expect(lane.take().map((j) => j.rows)).toEqual([3]) // 3 + 2 > 4
    enqueue(lane, job(lane, 9, 1000))
    expect(lane.take().map((j) => j.rows)).toEqual([2])
    expect(lane.take().map((j) => j.rows)).toEqual([9]) // more than max_batch: runs alone
  })

  it('takes a long wait in shrinking steps, so that the wake-up that sends the batch is a short, punctual timer', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    onTestFinished(() => void vi.useRealTimers())
    const lane = batchingLane(8, 60_000, 0.3)
    const start = performance.now()
    enqueue(lane, job(lane, 1, start + 200))
    const armed: number[] = []
    const timeout = vi.spyOn(globalThis, 'setTimeout')
    let due = false
    const check = (): void => {
      due = lane.batchDue(performance.now(), 0, check)
      if (!due) armed.push(timeout.mock.lastCall![1] as number)
    }
    check()
    vi.runAllTimers()
    expect(due).toBe(true)
    // Waiting ~197 ms in all (200 − run − margins): the first wake-up covers 7/8 of it, each next one 7/8 of what is left.
    expect(armed[0]).toBeCloseTo((200 - 0.3 - 2 - 0.15) * (7 / 8), 3)
    for (let i = 1; i < armed.length; i++) expect(armed[i]!).toBeLessThan(armed[i - 1]!)
    expect(armed.at(-1)!).toBeLessThan(8)
    expect(performance.now() - start).toBeLessThan(200 - 0.3 - 2)
  })

  it('never makes a model without batching wait', () => {
    const lane = new PoolLane('m', 'm.onnx', Infinity, undefined)
    enqueue(lane, job(lane, 1, 1000), job(lane, 1, 1000))
    expect(lane.waitLeft(0)).toBe(0)
    expect(lane.take()).toHaveLength(1)
  })
})
