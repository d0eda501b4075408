// A model's waiting jobs in the pool. Without batching they wait earliest deadline first
// (ties in arrival order): a short-budget request must not wait behind a long-budget one of
// the same model that could have gone after it and still made its own deadline. With
// batching they wait in arrival order, since a batch is the oldest request and the requests
// behind it that stack (max_queue_delay_ms counts from the oldest); the earliest deadline
// among them is tracked as they come and go (a sliding-window minimum), so the batch at the
// head can leave early for a request behind it without a scan of the queue per request.
import type { Job } from './lane.ts'

export class LaneQueue {
  private readonly jobs: Job[] = []
  private readonly byArrival: boolean
  /**
   * Batching only: the jobs that could still be the earliest deadline, oldest first, their
   * deadlines rising (a job is dropped from it once a later one with a deadline as early
   * comes: it leaves the queue first, so it is never again the earliest). The earliest is at `first`.
   */
  private candidates: Job[] = []
  private first = 0

  constructor(byArrival: boolean) {
    this.byArrival = byArrival
  }

  get length(): number {
    return this.jobs.length
  }

  /** The job that goes next (undefined when none waits). */
  peek(): Job | undefined {
    return this.jobs[0]
  }

  at(index: number): Job | undefined {
    return this.jobs[index]
  }

  /** A waiting job with the earliest deadline (the latest to arrive, if several share it), undefined when none waits. */
  earliest(): Job | undefined {
    return this.byArrival ? this.candidates[this.first] : this.jobs[0]
  }

  push(job: Job): void {
    const jobs = this.jobs
    if (this.byArrival) {
      jobs.push(job)
      this.admit(job)
      return
    }
    // Usually the budgets alike and the new deadline the latest: no search.
    if (jobs.length === 0 || jobs[jobs.length - 1]!.deadline <= job.deadline) {
      jobs.push(job)
      return
    }
    let lo = 0
    let hi = jobs.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (jobs[mid]!.deadline <= job.deadline) lo = mid + 1
      else hi = mid
    }
    jobs.splice(lo, 0, job)
  }

  /** Takes the job that goes next. */
  shift(): Job | undefined {
    const job = this.jobs.shift()
    if (job !== undefined && this.byArrival && this.candidates[this.first] === job) {
      this.first++
      if (this.first > 64 && this.first * 2 > this.candidates.length) {
        this.candidates = this.candidates.slice(this.first)
        this.first = 0
      }
    }
    return job
  }

  /** Takes a job out wherever it waits (cancelled); false if it was not waiting. */
  remove(job: Job): boolean {
    const index = this.jobs.indexOf(job)
    if (index < 0) return false
    this.jobs.splice(index, 1)
    // A job it had displaced may be the earliest again: rebuilt, as the search above was already a walk of the queue.
    if (this.byArrival) this.rebuild()
    return true
  }

  /** Takes every waiting job. */
  drain(): Job[] {
    const all = this.jobs.splice(0)
    this.candidates.length = 0
    this.first = 0
    return all
  }

  private admit(job: Job): void {
    const candidates = this.candidates
    while (candidates.length > this.first && candidates[candidates.length - 1]!.deadline >= job.deadline) candidates.pop()
    candidates.push(job)
  }

  private rebuild(): void {
    this.candidates.length = 0
    this.first = 0
    for (const job of this.jobs) this.admit(job)
  }
}
