// The inline lane's waiting runs: a job per run asked for, and the FIFOs the ones that cannot
// start yet wait in (queueFor; served as inline-lane.ts picks).
import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { TensorMap } from '../../tensor/index.ts'
import type { InferContext } from '../types.ts'
import type { InlineModel } from './inline.ts'

/**
 * The queues, in the order they are served: member positions 0 (most preferred) and 1, spare
 * runs off any request's path (shadows, canary comparisons), then every later position. The
 * spare off-path runs take turns with position 1's spare members in arrival order
 * (InlineLane.pick), in a queue of their own so that one that may not start yet (not urgent
 * before seconds) holds no live fallback behind it. A gate's runs (off any path, but needed)
 * wait with position 1.
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
    if (this.head > 64 && this.head * 2 > this.items.length) {
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
