// One job at a time, in the order asked: each starts once the one before it has settled,
// whether it succeeded or failed (each caller gets its own job's outcome). Reloads, registry
// operations and model-stream records each go through one.
export class SerialQueue {
  private tail: Promise<unknown>

  /** `opened`: jobs wait for it before the first starts (a queue held until its owner is ready). */
  constructor(opened: Promise<unknown> = Promise.resolve()) {
    this.tail = opened
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    const run = this.tail.then(job)
    this.tail = run.catch(() => undefined)
    return run
  }

  /** Settles once every job asked for so far has. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined)
  }
}
