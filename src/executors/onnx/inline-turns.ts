// The inline lane's runs per turn of the event loop. Each run handed over has a setImmediate
// callback of its own, so a burst handed over in one turn runs in one pass; while a unary gRPC
// answer waits to be sent (src/unsent-answers.ts) that would hold every answer of the burst
// until its end. So then RUNS_PER_TURN run per turn and the rest wait here, in the order they
// were handed over: at the next turn they go first, each after the reactions to the one before
// (a request its answer decided drops its other members, as between callbacks; not one an
// urgent fallback run in a refill between two of them decides), and runs handed over meanwhile
// queue behind them. A run whose request is decided is dropped, uncounted, when it comes up.
// The count runs from one of the lane's turns to the next and the flag is approximate (a turn
// may run one more). Measured with ghz (32 calls on one connection, cancer_logreg, 2 cores) on
// the first form of this (each run waiting on a setImmediate of its own): 8 per turn left the
// box ~20% idle instead of ~32% and answered 10-20% more calls for the same CPU per call; 4
// cost both sides more CPU per call than the overlap gained.
import { unsentAnswers } from '../../unsent-answers.ts'
import { JobQueue, type Job } from './inline-queue.ts'

export const RUNS_PER_TURN = 8

export class Turns {
  private readonly waiting = new JobQueue()
  /** Runs since the last turn began; the next turn is scheduled while it is above 0 (at the first). */
  private ran = 0
  private readonly run: (job: Job) => void

  /** `run`: runs the job (or drops it, its request decided). */
  constructor(run: (job: Job) => void) {
    this.run = run
  }

  /** A run handed over has its callback: it runs now, or waits for the next turn behind those already waiting. */
  handed(job: Job): void {
    if (job.ctx.over) return this.run(job)
    // Runs wait only after a full count, so a turn is scheduled already.
    if (this.waiting.length > 0 || this.full()) this.waiting.push(job)
    else this.counted(job)
  }

  /** The loop turned: the count starts again, and the runs that waited go first. */
  turn(): void {
    this.ran = 0
    this.next()
  }

  /** One waiting run, then (after its answer's reactions, and the refill they queue) the next. */
  private readonly next = (): void => {
    const job = this.waiting.peek()
    if (job === undefined) return
    if (!job.ctx.over && this.full()) return // full: the next turn is scheduled, and goes on from here
    this.waiting.shift()
    if (job.ctx.over) this.run(job)
    else this.counted(job)
    queueMicrotask(this.next)
  }

  private full(): boolean {
    return this.ran >= RUNS_PER_TURN && unsentAnswers.waiting
  }

  private counted(job: Job): void {
    if (this.ran++ === 0) setImmediate(newTurn, this)
    this.run(job)
  }
}

function newTurn(turns: Turns): void {
  turns.turn()
}
