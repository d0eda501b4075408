// Gateway.close() within a bound, when its caller gives one (serve gives its remaining grace).
// Closing the models waits for what cannot be cut short: an inference an ONNX worker thread is
// inside runs on (onnxruntime's run holds the thread), and terminating the thread then would
// abort the whole process, so it never is; the worker closes once the run ends, which for a
// run with no end is never. So a caller may wait at most `graceMs` for the close: past it, the
// close rejects with CloseTimeoutError, saying what is still closing, and goes on (`closed`
// settles when it is done after all). Nothing is stopped that it says stopped: the gateway
// takes no predicts from the first call on, and what still runs is named.
import { orLate } from './at-most.ts'

/** What the gateway still had closing when a close's grace ran out. */
export class CloseTimeoutError extends Error {
  readonly code = 'CLOSE_TIMEOUT'
  readonly graceMs: number
  /** What had not closed: `model <name>` for each model, `the inference workers` for the ONNX pool. */
  readonly pending: readonly string[]
  /** Settles once the close is done after all; never rejects. */
  readonly closed: Promise<void>

  /** `inRun`: an ONNX worker thread was inside an inference (or set aside as stuck in one) at the time. */
  constructor(graceMs: number, pending: readonly string[], closed: Promise<void>, inRun = false) {
    super(
      `the gateway did not close within ${graceMs} ms: ${pending.length ? pending.join(', ') : 'its models'} still closing` +
        (inRun
          ? ', as an inference an ONNX worker thread is inside cannot be interrupted (terminating the thread would abort the process). ' +
            'The close goes on, and is done once that run ends (error.closed). To end the process without waiting, end it by a signal ' +
            "(process.kill(process.pid, 'SIGTERM')): process.exit() would wait for the run, then abort."
          : '. The close goes on (error.closed settles once it is done).'),
    )
    this.name = 'CloseTimeoutError'
    this.graceMs = graceMs
    this.pending = pending
    this.closed = closed
  }
}

/** One close of the gateway, shared by every call to close(): what is still closing, and the wait for it. */
export class GatewayClose {
  private readonly open = new Map<string, number>()
  readonly done: Promise<void>
  /** Is an ONNX worker thread inside a run (or set aside as stuck in one)? Asked when a bound is over. */
  private readonly inRun: () => boolean

  /** `run` closes the parts, each through `track`, so a timeout can name those not closed. */
  constructor(run: (track: <T>(what: string, closing: Promise<T>) => Promise<T>) => Promise<void>, inRun: () => boolean = () => false) {
    this.inRun = inRun
    this.done = run((what, closing) => {
      this.open.set(what, (this.open.get(what) ?? 0) + 1)
      return closing.finally(() => {
        const left = this.open.get(what)! - 1
        if (left === 0) this.open.delete(what)
        else this.open.set(what, left)
      })
    })
    this.done.catch(() => undefined)
  }

  /**
   * Resolves once closed, rejects with CloseTimeoutError past `graceMs`, or with the close's
   * own error. Infinity, or anything past the longest timer (MAX_TIMER_MS, ~24.8 days): no bound.
   */
  within(graceMs: number): Promise<void> {
    if (Number.isNaN(graceMs) || graceMs < 0) return Promise.reject(new RangeError(`graceMs must be 0 or more (Infinity: no bound), not ${graceMs}`))
    return orLate(this.done, graceMs, () => new CloseTimeoutError(graceMs, [...this.open.keys()], this.done.catch(() => undefined), this.inRun()))
  }
}
