// The inline lane's waiting runs: a job per run asked for, and the FIFOs the ones that cannot
// start yet wait in (queueFor; served as inline-lane.ts picks).
import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { TensorMap } from '../../tensor/index.ts'
import type { InferContext } from '../types.ts'
import type { InlineModel } from './inline.ts'

/**
 * The queues, in the order they are served: member positions 0 (most preferred) and 1, spare
 * runs off any request's path (shadows, canary comparisons), then every later position. The
 * spare off-path runs take turns with position 1 (secondTier), in a queue of their own so that
 * one that may not start yet (not urgent before seconds) holds no live fallback behind it. A
 * gate's runs (off any path, but needed) wait with position 1.
 */
export const OFF_PATH = 2
const LATER = 3
export const QUEUES = LATER + 1
export const queueFor = (ctx: InferContext): number =>
  ctx.offPath === true && ctx.spareable ? OFF_PATH : ctx.member === 0 || ctx.member === 1 ? ctx.member : LATER

export interface Job {
  readonly model: InlineModel
  readonly inputs: TensorMap
  readonly ctx: InferContext
  /** A member the decision may come without (ctx.spareable when it was submitted). */
  readonly spareable: boolean
  /** When it was queued (0 if it started at once). */
  queuedAt: number
  /** From when it is needed: 0 for a needed member; a spareable one, once queued, when it has waited half the time it had left (inline-lane.ts). */
  urgentAt: number
  readonly resolve: (outputs: TensorMap) => void
  readonly reject: (err: Error) => void
}

/**
 * Runs handed to onnxruntime at once: the more, the more completions the event loop collects
 * per turn (measured: 32 serves ~12% more predicts per second than 8). Members a decision may
 * come without get a quarter: while the lane is busy they wait here, where a request decided
 * meanwhile drops them before they cost a run.
 */
export const DEPTH = 32
export const SPAREABLE_DEPTH = DEPTH / 4

/** A needed member (urgentAt 0), or a spareable one that has waited long enough (urgentAt passed). */
export const needed = (job: Job, now: number): boolean => now >= job.urgentAt

/**
 * Which of position 1 (`live`) and the spare runs off any request's path (`off`) takes their
 * place in the order: the one whose head may start; both may, the older head, but a live spare
 * member that is urgent (a fallback near its deadline) goes first. In arrival order, neither
 * starves the other: live members keep coming, and an off-path run ends at its time limit.
 */
export function secondTier(live: JobQueue, off: JobQueue, submitted: number, now: number): JobQueue {
  const l = live.peek()
  const o = off.peek()
  if (o === undefined || submitted >= depthFor(o, now)) return live
  if (l === undefined || submitted >= depthFor(l, now)) return off
  if (l.spareable && needed(l, now)) return live
  return o.queuedAt < l.queuedAt ? off : live
}

/** Runs that may be in onnxruntime when this job starts. */
export const depthFor = (job: Job, now: number): number => (needed(job, now) ? DEPTH : SPAREABLE_DEPTH)

/** The reason a queued run is dropped with: its request no longer needs it. */
export const NOT_NEEDED = new ModelError(ModelErrorCode.MODEL_FAILED, 'the request was decided before this run started', true)

/** A FIFO of jobs: an array and a head index (no O(n) shift), swept of jobs no longer needed. */
export class JobQueue {
  private items: Job[] = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(job: Job): void {
    this.items.push(job)
  }

  peek(): Job | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined
  }

  shift(): Job | undefined {
    if (this.head === this.items.length) return undefined
    const job = this.items[this.head++]
    // Emptied: the jobs it held are let go now, not at the next compaction.
    if (this.head === this.items.length) {
      this.items.length = 0
      this.head = 0
    } else if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return job
  }

  /** Drops (rejects) the jobs whose request is over; returns how many went. */
  sweep(): number {
    const kept: Job[] = []
    for (let i = this.head; i < this.items.length; i++) {
      const job = this.items[i]!
      if (job.ctx.over) job.reject(NOT_NEEDED)
      else kept.push(job)
    }
    const dropped = this.length - kept.length
    this.items = kept
    this.head = 0
    return dropped
  }
}
