// A token bucket per caller (API key, JWT caller, client certificate): two numbers updated in
// place, so a request costs a clock read and some arithmetic, never an allocation.
import type { RateSettings } from './config.ts'

export class TokenBucket {
  readonly rate: RateSettings
  private tokens: number
  private last: number
  /** Seconds until the next token, as the last refusal computed it (for retry-after). */
  retryAfterS = 0

  constructor(rate: RateSettings, now: number) {
    this.rate = rate
    this.tokens = rate.burst
    this.last = now
  }

  /** Takes one token at `now` (ms, monotonic); false when the bucket is empty. */
  take(now: number): boolean {
    const { rps, burst } = this.rate
    const elapsed = now - this.last
    this.last = now
    if (elapsed > 0) this.tokens = Math.min(burst, this.tokens + (elapsed * rps) / 1000)
    if (this.tokens >= 1) {
      this.tokens -= 1
      return true
    }
    // Whole seconds, at least 1: retry-after is an integer number of seconds.
    this.retryAfterS = Math.max(1, Math.ceil((1 - this.tokens) / rps))
    return false
  }
}
