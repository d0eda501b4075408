// Per-upstream circuit breaker. After `failures` consecutive failures the circuit opens
// and calls are refused at once (the model is annotated `skipped`, costing no budget);
// after `resetMs` one probe call is let through (half-open): its success closes the
// circuit, its failure opens it for another `resetMs`.

export const BreakerState = { closed: 'closed', open: 'open', halfOpen: 'half-open' } as const
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState]

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. */
  readonly failures: number
  /** How long the circuit stays open before one probe is allowed. */
  readonly resetMs: number
}

export class CircuitBreaker {
  private readonly options: BreakerOptions
  private consecutive = 0
  private openedAt = 0
  private probing = false
  private current: BreakerState = BreakerState.closed

  constructor(options: BreakerOptions) {
    this.options = options
  }

  get state(): BreakerState {
    return this.current
  }

  /** Consecutive failures that open the circuit. */
  get failuresToOpen(): number {
    return this.options.failures
  }

  /** May a call go out now? In half-open state only one probe is in flight at a time. */
  allow(now = performance.now()): boolean {
    if (this.current === BreakerState.closed) return true
    if (this.current === BreakerState.open) {
      if (now - this.openedAt < this.options.resetMs) return false
      this.current = BreakerState.halfOpen
    }
    if (this.probing) return false
    this.probing = true
    return true
  }

  success(): void {
    this.consecutive = 0
    this.probing = false
    this.current = BreakerState.closed
  }

  failure(now = performance.now()): void {
    this.probing = false
    this.consecutive++
    if (this.current === BreakerState.halfOpen || this.consecutive >= this.options.failures) {
      this.current = BreakerState.open
      this.openedAt = now
    }
  }

  /** A call that ended without a verdict (cancelled by the collector): frees the probe slot. */
  release(): void {
    this.probing = false
  }

  /** Milliseconds until a probe is allowed (0 when closed or half-open). */
  retryInMs(now = performance.now()): number {
    return this.current === BreakerState.open ? Math.max(0, this.options.resetMs - (now - this.openedAt)) : 0
  }
}
