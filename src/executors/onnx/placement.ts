// Where an embedded model runs: inline on the main thread's session (no hop; only for a
// model measured to be tiny) or in the worker pool. `auto` decides from measurements:
// the worker's warm-up runs at load (up to 64: their median within half of
// `inline_max_ms` and their 90th percentile within it open an inline session; a load
// competes with other loads and the JIT, so the few slowest warm-up runs are not the
// model's), then live: a model whose inline runs grow slower (median over the last 128
// beyond the limit) moves to the workers, and moves back once its worker runs are again well
// within it (median under half the limit). That holds for a model placed in the workers at
// load too (a warm-up measured on a busy box): it is given its inline session then. Only
// `auto` moves anything. With `auto`, a request with more rows than a tiny model's measured
// time allows within the limit goes to the workers; a model pinned inline runs every size there.
import { roundMs } from '../../starter/stats.ts'
import { quantileOf, type RunTimes } from './run-times.ts'

export const PLACEMENTS = ['auto', 'inline', 'worker'] as const
export type PlacementMode = (typeof PLACEMENTS)[number]

/** How many samples between two checks of the live measurements. */
const CHECK_EVERY = 128

export class Placement {
  readonly mode: PlacementMode
  readonly maxMs: number
  current: 'inline' | 'worker'
  /** Requests with more rows than this go to the workers (a batch takes longer). */
  maxRows = Infinity
  /** Why it is where it is, for the model's description. */
  reason: string
  /** Set for a model pinned inline that its warm-up shows is not tiny: every run holds the event loop that long. */
  readonly warning: string | undefined
  /** The run times it is judged by: its warm-up's, or after a late move inline the worker runs that moved it. */
  private judgedP50 = Number.NaN
  private judgedP90 = Number.NaN
  private stays = false

  /** `pinnedBy`: why a model is pinned when config did not say (batching pins it to the workers). */
  constructor(mode: PlacementMode, maxMs: number, warmRunsMs: readonly number[], pinnedBy?: string) {
    this.mode = mode
    this.maxMs = maxMs
    this.judgeBy(warmRunsMs)
    const tiny = this.judgedP50 <= maxMs / 2 && this.judgedP90 <= maxMs
    this.current = mode === 'inline' || (mode === 'auto' && tiny) ? 'inline' : 'worker'
    this.reason =
      mode === 'auto'
        ? `warm-up median ${fmt(this.judgedP50)} ms, p90 ${fmt(this.judgedP90)} ms: ${tiny ? 'within' : 'over'} inline_max_ms ${maxMs}`
        : (pinnedBy ?? `pinned (placement: ${mode})`)
    // Pinning is the operator's call, and nothing moves it; but it should be an informed one.
    this.warning =
      mode === 'inline' && this.judgedP50 > maxMs
        ? `pinned inline, but its warm-up median is ${fmt(this.judgedP50)} ms, over inline_max_ms ${maxMs}: every run holds the event loop (and every request behind it) that long; use placement: auto or worker`
        : undefined
  }

  /** A typical inline run (the warm-up median): less budget left than this, and the run is not started. */
  get typicalMs(): number {
    return this.judgedP50
  }

  /** Does the model get an inline session at all? */
  get wantsInline(): boolean {
    return this.current === 'inline'
  }

  /** Where a request with `rows` rows runs now. */
  where(rows: number): 'inline' | 'worker' {
    return this.current === 'inline' && rows <= this.maxRows ? 'inline' : 'worker'
  }

  /** After an inline run: every CHECK_EVERY samples, a model grown slow moves to the workers. */
  observeInline(times: RunTimes): void {
    if (this.mode !== 'auto' || this.current !== 'inline' || times.count % CHECK_EVERY !== 0) return
    const median = times.quantile(0.5)
    if (median <= this.maxMs) return
    this.current = 'worker'
    this.reason = `inline median ${fmt(median)} ms > inline_max_ms ${this.maxMs}: moved to the workers`
  }

  /**
   * After a worker run: inline (again) once its worker runs are tiny, by the load's test
   * (median within half the limit, p90 within it), unless it was told to stay. A model
   * without an inline session (placed in the workers at load) does not move yet: the
   * reason is returned, for moveInline once its session is open.
   */
  observeWorker(times: RunTimes, hasSession: boolean): string | null {
    if (this.mode !== 'auto' || this.current !== 'worker' || this.stays || times.count % CHECK_EVERY !== 0) return null
    const median = times.quantile(0.5)
    if (median > this.maxMs / 2 || times.quantile(0.9) > this.maxMs) return null
    const reason = `worker median ${fmt(median)} ms ≤ half of inline_max_ms ${this.maxMs}: moved inline`
    if (!hasSession) return reason
    this.current = 'inline'
    this.reason = reason
    return null
  }

  /** Its inline session opened after the load: inline now, judged by the worker runs that moved it. */
  moveInline(reason: string, runsMs: readonly number[]): void {
    this.judgeBy(runsMs)
    this.current = 'inline'
    this.reason = reason
  }

  /** A typical run, its tail, and so how many rows fit inline, from these run times. */
  private judgeBy(runsMs: readonly number[]): void {
    this.judgedP50 = quantileOf(runsMs, 0.5)
    this.judgedP90 = quantileOf(runsMs, 0.9)
    // Only a model placed by measurement has a row cap: pinned inline runs every size there, pinned to the workers never runs inline.
    this.maxRows = this.mode === 'auto' ? Math.max(1, Math.floor(this.maxMs / Math.max(this.judgedP50, 1e-3))) : Infinity
  }

  /** It cannot run inline after all (its inline session failed to open): the workers for good. */
  stayInWorkers(why: string): void {
    this.stays = true
    this.current = 'worker'
    this.reason = why
  }

  describe(inline: RunTimes | undefined, worker: RunTimes | undefined): Record<string, unknown> {
    return {
      mode: this.mode,
      current: this.current,
      reason: this.reason,
      ...(this.warning ? { warning: this.warning } : {}),
      inline_max_ms: this.maxMs,
      inline_max_rows: this.maxRows === Infinity ? null : this.maxRows,
      warm_p50_ms: round(this.judgedP50),
      warm_p90_ms: round(this.judgedP90),
      inline_p50_ms: inline ? round(inline.quantile(0.5)) : null,
      worker_p50_ms: worker && worker.count > 0 ? round(worker.quantile(0.5)) : null,
      worker_p99_ms: worker && worker.count > 0 ? round(worker.quantile(0.99)) : null,
    }
  }
}

const fmt = (ms: number): string => ms.toFixed(3)
const round = (ms: number): number | null => (Number.isFinite(ms) ? roundMs(ms) : null)
