// The calls a REST model may have at its pool at once (pool_size): the rest wait here, not in
// undici's queue. undici settles a queued request only once it is dispatched, however long
// before its signal aborted, and then destroys the connection it was given: a hung upstream
// would leave a queue of dead requests, each to cost a reconnect when it recovers. Here a
// call that waits leaves the queue the moment its signal aborts.

interface Waiter {
  readonly resolve: () => void
  readonly signal: AbortSignal
  readonly left: () => void
}

export class Slots {
  private free: number
  private readonly waiting: Waiter[] = []

  constructor(size: number) {
    this.free = size
  }

  /** Takes a slot: null when one was free (the common case costs no promise), else a wait that rejects with the signal's reason if it aborts first. */
  take(signal: AbortSignal): Promise<void> | null {
    if (this.free > 0) {
      this.free--
      return null
    }
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        signal,
        left: () => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1)
          reject(signal.reason as Error)
        },
      }
      signal.addEventListener('abort', waiter.left, { once: true })
      this.waiting.push(waiter)
    })
  }

  /** Gives a slot back: to the longest waiter, if any. */
  give(): void {
    const next = this.waiting.shift()
    if (next === undefined) {
      this.free++
      return
    }
    next.signal.removeEventListener('abort', next.left)
    next.resolve()
  }
}
