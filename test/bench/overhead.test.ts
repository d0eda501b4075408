// Scenario 1's p99 added at 50%, fed synthetic open-loop slices: the median slice is
// specserve's p99 over the baseline's in the same round, and the verdict's "why" says
// whether the gateway adds the tail in a typical stretch or a few stalls set it.
import { describe, expect, it } from 'vitest'
import { Rows } from '../../bench/lib/scenario.ts'
import type { LoadResult } from '../../bench/lib/types.ts'
import type { SliceCause } from '../../bench/lib/worst-slices.ts'
import { medianSliceAdded, p99AddedWhy } from '../../bench/scenarios/overhead.ts'
import { closedRun } from './runs.ts'

/** A run with these slice p99s, through JSON as the load child hands it over (NaN: a slice without a 2xx, which JSON writes as null). */
const sliced = (sliceP99: number[]): LoadResult => JSON.parse(JSON.stringify({ ...closedRun(100), sliceP99 })) as LoadResult

describe('medianSliceAdded', () => {
  it('is the median of the slices next to each other, so one stall does not set it', () => {
    expect(medianSliceAdded(sliced([10, 160, 12]), sliced([9, 8, 11]))).toBe(1)
    expect(medianSliceAdded(sliced([20, 30]), sliced([10, 10]))).toBe(15)
  })

  it('skips a round where either side had no 2xx (null in the results), and is undefined with none', () => {
    expect(sliced([NaN]).sliceP99).toEqual([null])
    expect(medianSliceAdded(sliced([NaN, 14, 13]), sliced([9, 10, NaN]))).toBe(4)
    expect(medianSliceAdded(sliced([NaN, NaN]), sliced([9, 10]))).toBeUndefined()
    expect(medianSliceAdded(closedRun(100), sliced([9]))).toBeUndefined()
  })
})

describe("the p99-added target's why", () => {
  const why = (sliceAdded: number | undefined, worstOurs = 180, worstBase = 12, empty = 0, ratio: number | null = 1, readings: Record<string, number> = {}, causes: SliceCause[] = []) => {
    const rows = new Rows()
    rows.add('baseline @ 50%', '', closedRun(100), { worst_slice_p99: worstBase, empty_slices: 0 })
    rows.add('specserve @ 50%', '', closedRun(100), { slice_p99_added: sliceAdded, worst_slice_p99: worstOurs, empty_slices: empty, ...readings })
    return p99AddedWhy(rows, { durationS: 10, sliceS: 2 }, ratio ?? undefined, causes)
  }

  it('puts a miss on a few slices when the median slice is within the target, and says whose slices they were', () => {
    const ours = why(0.4)
    expect(ours).toContain("specserve's p99 was +0.4 ms over the baseline's")
    expect(ours).toContain("was 180.0 ms, the baseline's 12.0 ms")
    expect(ours).toContain('100 ms of 10 s')
    expect(ours).toContain('in a typical stretch the gateway adds no more than the target')
    expect(ours).toContain("cannot be told from a pause of the gateway's own")
    expect(ours).toContain("no reading of the gateway's event loop")
    const alike = why(0.4, 40, 35)
    expect(alike).toContain('alike on both sides')
    expect(alike).toContain('a quieter box')
    expect(alike).not.toContain("the gateway's own")
    expect(why(0.4, 20, 90)).toContain("The worst slices were the baseline's")
  })

  it("says what held specserve's worst slices, repetition by repetition, with their readings", () => {
    const readings = { worst_slice_loop_busy: 0.5, worst_slice_loop_delay: 60, worst_slice_loop_cpu: 0.25, worst_slice_gc: 12, worst_slice_gc_long: 0, worst_slice_probe: 45, worst_slice_steal: 40 }
    const box = why(0.4, 180, 12, 0, 1, readings, ['box', 'box', 'turn'])
    expect(box).toContain("the gateway's event loop was busy 50% of the time and ran up to 60.0 ms late, its thread running 25% of that time, its garbage collector paused 12.0 ms in all (0 over 10 ms)")
    expect(box).toContain('an idle thread of the load generator waited up to 45.0 ms for a core (the hypervisor took 40.0 ms')
    expect(box).toContain('2 of 3, stalls of the box')
    expect(box).toContain("1 of 3, a long turn of the gateway's own event loop")
    expect(box).toContain('a quieter box') // the most frequent cause's remedy
    expect(why(0.4, 180, 12, 0, 1, readings, ['gc'])).toContain('larger young generation')
    expect(why(0.4, 180, 12, 0, 1, readings, ['turn', 'neither', 'turn'])).toContain('a CPU profile of those slices')
    expect(why(0.4, 180, 12, 0, 1, readings, ['neither'])).toContain("the load generator's own delay")
    // Slices that were not specserve's worst say nothing of what held them.
    expect(why(0.4, 40, 35, 0, 1, readings, ['turn'])).toContain('alike on both sides')
  })

  it('says how many of its slices had no 2xx, which the slice figures leave out', () => {
    expect(why(0.4, 40, 35, 2)).toContain("In 2 of specserve's slices")
    expect(why(0.4, 40, 35, 0)).not.toContain('no request was answered 2xx')
  })

  it('puts it on the gateway when the median slice misses too, with what held its worst slices', () => {
    const held = why(3.2, 180, 12, 0, 1, { worst_slice_loop_busy: 0.95, worst_slice_loop_delay: 11 }, ['capacity'])
    expect(held).toContain('the gateway adds it in a typical stretch too')
    expect(held).toContain("Its worst slices were well above the baseline's (180.0 ms against the baseline's 12.0 ms)")
    expect(held).not.toContain('For the worst slices') // at capacity: the remedy is the one already given
    expect(why(3.2, 180, 12, 0, 1, {}, ['box', 'box'])).toContain('For the worst slices: a quieter box')
    expect(held).toContain("the gateway's event loop was busy 95% of the time and ran up to 11.0 ms late")
    expect(held).toContain('1 of 1, the gateway at capacity')
    expect(why(3.2)).toContain("no reading of the gateway's event loop")
    const text = why(3.2)
    expect(text).toContain('+3.2 ms')
    expect(text).toContain('the gateway adds it in a typical stretch too')
    expect(text).toContain('50% of its own max')
    expect(why(3.2, 180, 12, 0, null)).toContain('a share of its own max this run did not measure')
  })

  it('says so when no round could be compared', () => {
    expect(why(undefined)).toContain('No round had a 2xx p99 on both sides')
  })
})
