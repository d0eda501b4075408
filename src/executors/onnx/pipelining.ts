// Whether a model's jobs may wait inside a worker behind another unit (pipelined): judged by
// its runs in the workers, kept by its lane (lane.ts).
import type { RunTimes } from './run-times.ts'

/**
 * Only models whose recent runs in the workers are mostly under this (PIPELINE_SHARE of the
 * last 128: a busy box's preemption of a tiny model spares more than that) may wait inside a
 * worker (pipelined)...
 */
export const PIPELINE_MAX_MS = 2
const PIPELINE_SHARE = 0.9
/**
 * ...and none of whose last CALM_RUNS runs took longer than this. A job waiting inside a worker
 * waits for the run ahead of it: a model whose cost depends on its input (0.46 ms at the
 * median, 3 s on some inputs) would hold it that long while other workers idle. A run that
 * long is remembered for CALM_RUNS runs, however rare (a run set aside as stuck too).
 */
const PIPELINE_LONG_RUN_MS = 25
const CALM_RUNS = 1024

/** Runs since the last one over PIPELINE_LONG_RUN_MS; none seen counts as calm. */
export class LongRuns {
  private since = CALM_RUNS

  observe(runMs: number): void {
    this.since = runMs > PIPELINE_LONG_RUN_MS ? 0 : this.since + 1
  }

  /** A long run that will never be observed (set aside as stuck). */
  seen(): void {
    this.since = 0
  }

  get calm(): boolean {
    return this.since >= CALM_RUNS
  }
}

/** `times` counts its samples over PIPELINE_MAX_MS (new RunTimes(PIPELINE_MAX_MS)). */
export const pipelinedBy = (times: RunTimes, longRuns: LongRuns): boolean => longRuns.calm && times.quantileWithin(PIPELINE_SHARE)
