// The least time a model's run in the workers is known to take: a job with less time left
// cannot finish, so it is never started (WOULD_MISS_DEADLINE). The floor is the fastest run
// seen, the warm-up's counting too until the real runs can be trusted alone, and a refused
// job is let through now and then (a probe) when the warm-up says the floor is too high.
import { ModelError, ModelErrorCode } from '../../errors.ts'

/**
 * Real runs it takes before their fastest alone says what a run needs. Until then the
 * warm-up's fastest counts too: one or two first runs slowed by a busy box would otherwise
 * set a floor that refuses every request under it, and a refused request measures nothing.
 */
const TRUSTED_RUNS = 8
/**
 * A refused job runs anyway once this long has passed without a run of the model, when the
 * warm-up says the floor is too high (PROBE_WHEN_OVER × its fastest run): its time can lower
 * a floor set when the box was slow. By time, not by count: at thousands of requests a
 * second, one probe in N would keep a slow model busy in a worker. And never for a model
 * whose warm-up agrees with its floor (a real straggler): on 2 cores, its 100 ms in a worker
 * once a second starved the event loop for a tenth of the time (the bench's soak).
 */
const PROBE_INTERVAL_MS = 1000
const PROBE_WHEN_OVER = 2

export class RunFloor {
  /**
   * Fastest run seen (0 = no real run yet, nothing refused): a job with less time left than
   * this cannot finish, so it never starts. Once the model has run, the warm-up's runs on
   * zeros count too until TRUSTED_RUNS real runs: their cost need not be the data's, but they
   * are many, and the first real runs are few and can be slow.
   */
  ms = 0
  /** Fastest warm-up run and fastest real run (Infinity: none). */
  private readonly warmMinMs: number
  private realMinMs = Infinity
  /** performance.now() of the last run answered or probe let through (see PROBE_INTERVAL_MS). */
  private measuredAt = -Infinity

  /** `warmRunsMs`: the load's warm-up runs in a worker (batch of 1). */
  constructor(warmRunsMs: readonly number[]) {
    this.warmMinMs = warmRunsMs.length ? Math.min(...warmRunsMs) : Infinity
  }

  /**
   * Is a job with `leftMs` left at `now` refused (less than the floor)? Once
   * PROBE_INTERVAL_MS has passed without a run, and the warm-up ran much faster than the
   * floor, one is let through instead: a floor only runs can lower would otherwise never
   * move again once set too high.
   */
  refuses(leftMs: number, now: number): boolean {
    if (leftMs >= this.ms) return false
    if (!(this.ms > PROBE_WHEN_OVER * this.warmMinMs) || now - this.measuredAt < PROBE_INTERVAL_MS) return true
    this.measuredAt = now
    return false
  }

  /** A real run's time; `runs`: the model's runs so far, this one included. */
  observe(runMs: number, runs: number): void {
    this.measuredAt = performance.now()
    if (runMs < this.realMinMs) this.realMinMs = runMs
    this.ms = runs >= TRUSTED_RUNS ? this.realMinMs : Math.min(this.warmMinMs, this.realMinMs)
  }
}

/** A duration for a message: small ones keep their significant digits (0.05, not 0.0). */
const ms = (v: number): string => (Math.abs(v) < 1 ? v.toFixed(3) : v.toFixed(1))

/** A run that needs ~`needMs` with `leftMs` of budget left is never started. */
export function wouldMiss(needMs: number, leftMs: number): ModelError {
  // Nothing measured yet (needMs 0): only a budget already spent is refused, and "needs ~0.000 ms" would read as a bug.
  const why = needMs > 0 ? `needs ~${ms(needMs)} ms, ${ms(leftMs)} ms left` : `no budget left (${ms(leftMs)} ms)`
  return new ModelError(ModelErrorCode.WOULD_MISS_DEADLINE, why, true)
}
