// Waits that must end on time (a predict's deadline, a batch's latest send). On a busy,
// virtualized box a timer fires late in proportion to its length (measured: ~1.2%; 100–180 ms
// timers 3–8 ms late, 450 ms ones 5–7 ms), so a long wait goes in steps: each wake-up covers
// at most 7/8 of what is left and the wait is measured again, so the last timer is short and
// on time. A wait that ends early (decided, sent) takes one timer.

/**
 * What a timer's end is known to within: Node counts timers in whole milliseconds of a loop
 * clock read before the callbacks run, so one can fire up to 1 ms before its time by
 * performance.now(). A wait with less than this left is over.
 */
export const TIMER_GRAIN_MS = 1
/** Under this, one timer. */
const ONE_TIMER_UNDER_MS = 8
const STEP_SHARE = 7 / 8
/** The longest timer Node.js can set (2^31-1 ms, about 24.8 days): a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The delay of the next wake-up for a wait of `leftMs` that must end on time. */
export function timerStep(leftMs: number): number {
  return leftMs > ONE_TIMER_UNDER_MS ? Math.min(leftMs * STEP_SHARE, MAX_TIMER_MS) : leftMs
}
