import { MAX_TIMER_MS } from './timer-step.ts'

/**
 * Waits for `work` at most `ms`: what still runs then is left to the caller (at shutdown, to the
 * exit). A rejection of `work` counts as done: the caller that cares about the error handles it
 * on `work` itself. The timer is cleared as soon as `work` settles, so it never holds the process.
 * Past MAX_TIMER_MS (Infinity included) there is no bound: such a timer would fire at once.
 */
export async function atMost(work: Promise<unknown>, ms: number): Promise<void> {
  if (ms > MAX_TIMER_MS) return work.then(noop, noop)
  let timer: NodeJS.Timeout | undefined
  const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))
  try {
    await Promise.race([work.then(noop, noop), elapsed])
  } finally {
    clearTimeout(timer)
  }
}

function noop(): void {}

/**
 * Waits `ms` (a timer that fake timers control, unlike node:timers/promises'), or until `signal`
 * aborts: it resolves either way, and the caller reads the signal.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return new Promise((resolve) => setTimeout(resolve, ms))
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}

/**
 * `work`, or `signal`'s reason as a rejection once it aborts, whichever comes first: the
 * caller stops waiting for work that cannot be stopped (a native run, an executor that
 * ignores its signal). What `work` does later is handled, never an unhandled rejection.
 */
export function orAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(noop)
    return Promise.reject(signal.reason as Error)
  }
  return new Promise<T>((resolve, reject) => {
    const stop = (): void => reject(signal.reason as Error)
    signal.addEventListener('abort', stop, { once: true })
    work.then(
      (value) => {
        signal.removeEventListener('abort', stop)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', stop)
        reject(err as Error)
      },
    )
  })
}

/**
 * `work`, or a rejection with `late()`'s error once `ms` is over, whichever comes first. The
 * timer is cleared as soon as `work` settles; past MAX_TIMER_MS (Infinity included) there is
 * none, and `work` is returned as is.
 */
export function orLate<T>(work: Promise<T>, ms: number, late: () => Error): Promise<T> {
  return ms > MAX_TIMER_MS ? work : lateAfter(ms, late, () => work)
}

/**
 * `work(signal)` given at most `ms`: then its signal aborts with an Error saying `reason`, and
 * the caller stops waiting, whether or not the work stops (a native run does not). Past
 * MAX_TIMER_MS (Infinity included) there is no limit, and the work's promise is returned as is.
 */
export function limited<T>(ms: number, reason: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController()
  if (ms > MAX_TIMER_MS) {
    // A signal of its own though it never aborts: one shared by every unbounded call would
    // gather the listeners works add and never remove.
    return started(work, controller.signal)
  }
  const late = (): Error => {
    const over = new Error(reason)
    controller.abort(over)
    return over
  }
  return lateAfter(ms, late, () => work(controller.signal))
}

/**
 * The timer first, then the work: work given the same limit (a gRPC call's deadline, set as it
 * starts) ends after the timer, whose error is the one the caller sees. One promise settled by
 * whichever comes first (no listener on a signal: limited() runs per shadow and canary comparison).
 * `ms` is a limit, at most MAX_TIMER_MS: the callers return the work itself past it.
 */
function lateAfter<T>(ms: number, late: () => Error, start: () => Promise<T>): Promise<T> {
  const timer = setTimeout(() => reject(late()), ms)
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const settled = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)))
  started(start, undefined).then(
    (value) => (clearTimeout(timer), resolve(value)),
    (err: unknown) => (clearTimeout(timer), reject(err as Error)),
  )
  return settled
}

/** `start(arg)`'s promise, or what it threw as a rejection: a caller handles one way of failing (limited's unbounded path makes no closure for it). */
function started<A, T>(start: (arg: A) => Promise<T>, arg: A): Promise<T> {
  try {
    return start(arg)
  } catch (err) {
    return Promise.reject(err as Error)
  }
}
