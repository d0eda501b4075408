// Scenario 1's p99 added at 50%, fed synthetic open-loop slices: the median slice is
// specserve's p99 over the baseline's in the same round, and the verdict's "why" says
// whether the gateway adds the tail in a typical stretch or a few stalls set it.
import { describe, expect, it } from 'vitest'
import { Rows } from '../../bench/lib/scenario.ts'
import type { LoadResult } from '../../bench/lib/types.ts'
import { medianSliceAdded, p99AddedWhy } from '../../bench/scenarios/overhead.ts'
import { closedRun } from './runs.ts'

const sliced = (sliceP99: number[]): LoadResult => ({ ...closedRun(100), sliceP99 })

describe('medianSliceAdded', () => {
  it('is the median of the slices next to each other, so one stall does not set it', () => {
    expect(medianSliceAdded(sliced([10, 160, 12]), sliced([9, 8, 11]))).toBe(1)
    expect(medianSliceAdded(sliced([20, 30]), sliced([10, 10]))).toBe(15)
  })

  it('skips a slice without a p99 on either side, and is undefined with none', () => {
    expect(medianSliceAdded(sliced([NaN, 14, 13]), sliced([9, 10, NaN]))).toBe(4)
    expect(medianSliceAdded(closedRun(100), sliced([9]))).toBeUndefined()
  })
})

describe("the p99-added target's why", () => {
  const why = (sliceAdded: number) => {
    const rows = new Rows()
    rows.add('baseline @ 50%', '', closedRun(100), { worst_slice_p99: 12 })
    rows.add('specserve @ 50%', '', closedRun(100), { slice_p99_added: sliceAdded, worst_slice_p99: 180 })
    return p99AddedWhy(rows, { durationS: 10, sliceS: 2 }, 1)
  }

  it('puts a miss on a few stalled slices when the median slice is within the target', () => {
    const text = why(0.4)
    expect(text).toContain("specserve's p99 was +0.4 ms over the baseline's")
    expect(text).toContain("its worst slice's p99 was 180.0 ms, the baseline's 12.0 ms")
    expect(text).toContain('100 ms of 10 s')
    expect(text).toContain('in a typical stretch the gateway adds no more than the target')
  })

  it('puts it on the gateway when the median slice misses too', () => {
    const text = why(3.2)
    expect(text).toContain('+3.2 ms')
    expect(text).toContain('the gateway adds it in a typical stretch too')
  })
})
