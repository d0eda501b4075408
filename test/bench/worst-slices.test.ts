// What a run's worst slice measured, and what held it: the box, the gateway's collector, a
// long turn of its event loop, or none of them, judged against how far that slice's p99
// stood above the run's median slice.
import { describe, expect, it } from 'vitest'
import type { LoadResult, SliceReading } from '../../bench/lib/types.ts'
import { sliceCause, worstSliceReadings } from '../../bench/lib/worst-slices.ts'
import { closedRun } from './runs.ts'

/** A run with these slice p99s and readings, through JSON as the load child hands it over (NaN: a slice without a 2xx). */
const run = (sliceP99: number[], slices: SliceReading[]): LoadResult => JSON.parse(JSON.stringify({ ...closedRun(100), sliceP99, slices })) as LoadResult
const loop = (loopDelayMs: number, loopDelayCpu: number, gcMs = 0, gcOver10ms = 0, loopBusy = 0.5) => ({ loopDelayMs, loopDelayCpu, loopBusy, gcMs, gcOver10ms })
const plain: SliceReading = { probeMs: 1, stealMs: 0, runtime: loop(1, 1) }

describe('worstSliceReadings', () => {
  it("reads the slice with the run's highest p99, skipping slices without a 2xx", () => {
    const r = run([NaN, 30, 12], [{ probeMs: 90, stealMs: 50, runtime: loop(95, 0.2, 1) }, { probeMs: 4, stealMs: 0, runtime: loop(28, 0.9, 21, 1) }, { probeMs: 2, stealMs: 10, runtime: null }])
    expect(worstSliceReadings(r)).toEqual({ worst_slice_probe: 4, worst_slice_steal: 0, worst_slice_loop_busy: 0.5, worst_slice_loop_delay: 28, worst_slice_loop_cpu: 0.9, worst_slice_gc: 21, worst_slice_gc_long: 1 })
    // A server without a runtime reading (the baseline), and a run without slices.
    const none = { worst_slice_loop_busy: undefined, worst_slice_loop_delay: undefined, worst_slice_loop_cpu: undefined, worst_slice_gc: undefined, worst_slice_gc_long: undefined, worst_slice_steal: undefined }
    expect(worstSliceReadings(run([5, 9], [{ probeMs: 1, stealMs: null }, { probeMs: 7, stealMs: null }]))).toEqual({ ...none, worst_slice_probe: 7 })
    expect(worstSliceReadings(closedRun(100))).toEqual({ ...none, worst_slice_probe: undefined })
  })
})

describe('sliceCause', () => {
  // Median slice 10 ms, worst 70 ms: an excess of 60 ms, of which a wait must explain half.
  const worst = (reading: SliceReading) => run([10, 70, 9, 11], [plain, reading, plain, plain])

  it("blames the box when the loop's thread was off the CPU for most of its delay, or an idle thread waited at least as long", () => {
    expect(sliceCause(worst({ probeMs: 3, stealMs: 0, runtime: loop(60, 0.2) }))).toBe('box')
    expect(sliceCause(worst({ probeMs: 65, stealMs: 0, runtime: loop(60, 0.9) }))).toBe('box')
    // Only the idle thread waited long: the load generator's side lost its core.
    expect(sliceCause(worst({ probeMs: 45, stealMs: 0, runtime: loop(2, 1) }))).toBe('box')
    // The loop ran through a delay longer than the idle thread's wait: its own turn.
    expect(sliceCause(worst({ probeMs: 40, stealMs: 0, runtime: loop(60, 0.9) }))).toBe('turn')
  })

  it('blames the collector only for a long pause that covers half the delay or more, the thread running', () => {
    expect(sliceCause(worst({ probeMs: 3, stealMs: 0, runtime: loop(60, 0.9, 35, 1) }))).toBe('gc')
    // A pause over 10 ms, but far from the delay: a long turn of the loop's own.
    expect(sliceCause(worst({ probeMs: 3, stealMs: 0, runtime: loop(60, 0.9, 12, 1) }))).toBe('turn')
    expect(sliceCause(worst({ probeMs: 3, stealMs: 0, runtime: loop(60, 0.9, 40, 0) }))).toBe('turn')
  })

  it('blames capacity when no wait was long but the loop was busy nearly throughout, and neither otherwise', () => {
    expect(sliceCause(worst({ probeMs: 4, stealMs: 0, runtime: loop(11, 0.6, 0, 0, 0.95) }))).toBe('capacity')
    expect(sliceCause(worst({ probeMs: 4, stealMs: 0, runtime: loop(3, 0.1) }))).toBe('neither')
  })

  it("says nothing without a reading of the server's loop or of the probe", () => {
    expect(sliceCause(worst({ probeMs: 40, stealMs: 0, runtime: null }))).toBeUndefined()
    expect(sliceCause(worst({ probeMs: 40, stealMs: 0 }))).toBeUndefined()
    expect(sliceCause(worst({ probeMs: null, stealMs: 0, runtime: loop(60, 1) }))).toBeUndefined()
    expect(sliceCause(closedRun(100))).toBeUndefined()
  })
})
