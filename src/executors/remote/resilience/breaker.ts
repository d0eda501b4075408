// Per-upstream circuit breaker. After `failures` consecutive failures the circuit opens
// and calls are refused at once (the model is annotated `skipped`, costing no budget);
// after `resetMs` one probe call is let through (half-open): its success closes the
// circuit, its failure opens it for another `resetMs`. Once open, only the probe moves it:
// calls sent before it opened end whenever they end, and a straggler's failure must not put
// the probe off, nor its success close a circuit the probe has not tested.

export const BreakerState = { closed: 'closed', open: 'open', halfOpen: 'half-open' } as const
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState]

/**
 * What allow() decided for a call. Only the probe's own verdict (or release) frees the
 * half-open probe slot: a call that started while the circuit was closed and ends during
 * half-open must not let a second probe through.
 */
export const Admission = { refused: 0, call: 1, probe: 2 } as const
export type Admission = (typeof Admission)[keyof typeof Admission]

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. */
  readonly failures: number
  /** How long the circuit stays open before one probe is allowed. */
  readonly resetMs: number
  /** The fair chance a call is judged on while no call has answered, so no usual latency is known (circuit.ts). */
  readonly firstCallsMs: number
}

export class CircuitBreaker {
  private readonly options: BreakerOptions
  private consecutive = 0
  private openedAt = 0
  private probing = false
  private probeFailed = false
  private current: BreakerState = BreakerState.closed

  constructor(options: BreakerOptions) {
    this.options = options
  }

  get state(): BreakerState {
    return this.current
  }

  /** May a call go out now, and is it the probe? In half-open state only one probe is in flight at a time. */
  allow(now = performance.now()): Admission {
    if (this.current === BreakerState.closed) return Admission.call
    if (this.current === BreakerState.open) {
      if (now - this.openedAt < this.options.resetMs) return Admission.refused
      this.current = BreakerState.halfOpen
    }
    if (this.probing) return Admission.refused
    this.probing = true
    return Admission.probe
  }

  /** The probe's success closes the circuit; another call's success resets the count while closed. */
  success(probe = false): void {
    if (probe) {
      this.probing = false
      this.current = BreakerState.closed
    } else if (this.current !== BreakerState.closed) return
    this.consecutive = 0
  }

  /** The probe's failure opens the circuit again; other calls open it after `failures` in a row while closed. */
  failure(probe = false, now = performance.now()): void {
    if (probe) {
      this.probing = false
    } else {
      if (this.current !== BreakerState.closed) return
      if (++this.consecutive < this.options.failures) return
    }
    this.current = BreakerState.open
    this.probeFailed = probe
    this.openedAt = now
  }

  /** A call that ended without a verdict (cancelled by the collector, an input refused): a probe frees its slot. */
  release(probe = false): void {
    if (probe) this.probing = false
  }

  /** How long a call must have had for its cut-off to count, while no call has answered. */
  get firstCallsMs(): number {
    return this.options.firstCallsMs
  }

  /** Why the circuit is open, for the CIRCUIT_OPEN message. */
  get openedBecause(): string {
    return this.probeFailed ? 'its probe failed' : `${this.options.failures} consecutive failure${this.options.failures === 1 ? "" : "s"}`
  }

  /** Milliseconds until a probe is allowed (0 when closed or half-open). */
  retryInMs(now = performance.now()): number {
    return this.current === BreakerState.open ? Math.max(0, this.options.resetMs - (now - this.openedAt)) : 0
  }
}
