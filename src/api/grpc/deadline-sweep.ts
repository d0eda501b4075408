// Ends calls whose request is still arriving when they are due (their deadline, or the end of
// server.request_timeout_ms) with one timer for all of them, where grpc-js arms a timer per
// call. The timer is armed for the earliest time it knows, so a call that comes due later
// (the common case: a client with one timeout) costs a comparison. When it fires, the calls
// due are ended and it is armed again for the earliest one left; a call removed before it
// is due leaves at most one early wake-up behind.

export interface Expiring {
  /** When the call is ended if still watched (ms since the epoch). */
  readonly due: number
  /** Ends the call: it came due (`now` or before). */
  expire(now: number): void
}

/** setTimeout's longest delay: a longer one would fire at once. */
const MAX_DELAY_MS = 2 ** 31 - 1

export class DeadlineSweep<T extends Expiring> {
  private readonly calls = new Set<T>()
  private timer: NodeJS.Timeout | undefined = undefined
  private armedFor = Infinity

  get size(): number {
    return this.calls.size
  }

  /** Watches `call` until it is deleted; `call.due` must be finite. */
  add(call: T): void {
    this.calls.add(call)
    if (call.due < this.armedFor) this.arm(call.due)
  }

  delete(call: T): void {
    this.calls.delete(call)
  }

  private arm(at: number): void {
    clearTimeout(this.timer)
    this.armedFor = at
    this.timer = setTimeout(() => this.sweep(), Math.min(MAX_DELAY_MS, Math.max(0, at - Date.now()))).unref()
  }

  private sweep(): void {
    this.timer = undefined
    this.armedFor = Infinity
    const now = Date.now()
    let next = Infinity
    for (const call of this.calls) {
      if (call.due <= now) {
        this.calls.delete(call)
        try {
          call.expire(now)
        } catch {
          // One call failing to end must not leave the others, or the timer, behind.
        }
      } else if (call.due < next) next = call.due
    }
    if (next !== Infinity) this.arm(next)
  }
}
