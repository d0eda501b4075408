// Ends calls at their deadlines with one timer for all of them, where grpc-js arms a timer per
// call. The timer is armed for the earliest deadline it knows, so a call that comes with a
// later one (the common case: a client with one timeout) costs a comparison. When it fires,
// the calls due are ended and it is armed again for the earliest one left; a call removed
// before its deadline leaves at most one early wake-up behind.

export interface Expiring {
  readonly deadline: number
  /** Ends the call: its deadline (`now` or before) has come. */
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

  /** Watches `call` until it is deleted; `call.deadline` must be finite. */
  add(call: T): void {
    this.calls.add(call)
    if (call.deadline < this.armedFor) this.arm(call.deadline)
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
      if (call.deadline <= now) {
        this.calls.delete(call)
        call.expire(now)
      } else if (call.deadline < next) next = call.deadline
    }
    if (next !== Infinity) this.arm(next)
  }
}
