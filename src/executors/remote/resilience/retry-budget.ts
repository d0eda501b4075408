// A retry budget (as in Finagle and gRPC's retry throttling): every first attempt earns
// `ratio` of a token, every retry or hedge spends one. Extra requests can so never add
// more than `ratio` to the load an upstream sees, however many calls fail. A small
// allowance of `minPerSecond` keeps retries possible at low traffic.

export interface RetryBudgetOptions {
  /** Extra requests allowed per first attempt (0.2 = at most 20% more load). */
  readonly ratio: number
  /** Retries allowed each second regardless of traffic. */
  readonly minPerSecond: number
}

/** Most tokens that can be saved up: a long quiet spell must not fund a retry storm. */
const MAX_TOKENS = 100

export class RetryBudget {
  private readonly options: RetryBudgetOptions
  private tokens = 0
  private windowStart = 0
  private usedInWindow = 0

  constructor(options: RetryBudgetOptions) {
    this.options = options
  }

  /** Called once per first attempt. */
  deposit(): void {
    this.tokens = Math.min(MAX_TOKENS, this.tokens + this.options.ratio)
  }

  /** Takes a token for one retry or hedge; false when the budget is spent. */
  withdraw(now = performance.now()): boolean {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now
      this.usedInWindow = 0
    }
    if (this.usedInWindow < this.options.minPerSecond) {
      this.usedInWindow++
      return true
    }
    if (this.tokens >= 1) {
      this.tokens -= 1
      return true
    }
    return false
  }
}
