// A model's queue in the pool: its jobs (earliest deadline first; in arrival order with
// batching, lane-queue.ts), what it may run at once, its measured run times (and from them the
// floor under which a job is refused, run-floor.ts), and (with batching) when the jobs at its
// head make a batch worth sending. A batch is sent when it is
// full, when its oldest job has waited max_queue_delay_ms, or when waiting longer could make
// a deadline miss, given the time this model has been measured to take for that many rows:
// its own earliest, or that of a job behind it that cannot join it (which has to wait for it).
// A unit's answer (or failure) is handed to its jobs here.
import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { TensorMap } from '../../tensor/index.ts'
import { BATCH_ROWS } from '../types.ts'
import { BatchTimes, countRun, stackable, type BatchFigures, type BatchSettings } from './batch.ts'
import { LaneQueue } from './lane-queue.ts'
import type { PartAnswer } from './protocol.ts'
import { LongRuns, PIPELINE_MAX_MS, pipelinedBy } from './pipelining.ts'
import { RunFloor, wouldMiss } from './run-floor.ts'
import { quantileOf, RunTimes } from './run-times.ts'
import type { SentUnit } from './slot.ts'
import { TIMER_GRAIN_MS, timerStep } from '../../timer-step.ts'

export interface Job {
  readonly lane: PoolLane
  readonly inputs: TensorMap
  readonly rows: number
  readonly deadline: number
  readonly signal: AbortSignal
  readonly enqueuedAt: number
  readonly resolve: (outputs: TensorMap) => void
  readonly reject: (err: Error) => void
  /** In the lane's queue (not yet sent to a worker). */
  queued: boolean
  /** The unit it was sent in, until its answer. */
  unit: Unit | null
  /** Let through though it has less time left than the model's fastest run (PoolLane.refuses). */
  readonly probe: boolean
}

/** One session.run in a worker: one job, or a batch. */
export interface Unit extends SentUnit {
  readonly lane: PoolLane
  readonly jobs: readonly Job[]
  readonly rows: number
  /**
   * When it was sent, if the worker begins it at once: its answer's time minus this and the run
   * is the hop. -1 when it waits there, behind another unit or a load (Dispatcher: QueueDepth.sent
   * works that out), as that wait is no hop.
   */
  sentAt: number
  /** Sent to a worker that has not begun it: counted in the pool's queue depth (queue-depth.ts). */
  waiting: boolean
}

/**
 * Time kept in hand when a batch waits for more rows, on top of the measured hop to the
 * worker and back and how late wake-ups fire: the estimate's error (half the run; a run
 * after an idle spell is slower than a warm one) and a fixed margin (a busy box's scheduling).
 */
const MARGIN_MS = 2
const MARGIN_SHARE = 0.5

export class PoolLane implements BatchFigures {
  readonly key: string
  readonly path: string
  /** Which file its workers loaded (src/file-stamp.ts): a worker started again after a crash loads that or nothing. */
  readonly stamp: string | undefined
  /** Why no worker has it any more (every load after a crash refused): its jobs then fail at once, MODEL_FAILED. */
  lost: string | undefined
  /** At most this many units of this model run at once, so one slow model cannot take every worker. */
  readonly cap: number
  readonly batching: BatchSettings | undefined
  readonly queue: LaneQueue
  inflight = 0
  /** The time under which a job is refused (run-floor.ts). */
  private readonly floor: RunFloor
  /** Its runs' memory of long ones (pipelining.ts). */
  private readonly longRuns = new LongRuns()
  /** Recent inference times in the workers (a batch's whole run). */
  readonly times = new RunTimes(PIPELINE_MAX_MS)
  /** Run time by batch size, seeded with the warm-up's single-row median. */
  readonly batchTimes = new BatchTimes()
  /** Units run, batches among them (two requests or more) and the requests those carried. */
  runs = 0
  batches = 0
  batchedRequests = 0
  /** The wake-up armed for a batch still waiting, and when it fires. */
  timer: NodeJS.Timeout | undefined
  wakeAt = Infinity

  /** `warmRunsMs`: the load's warm-up runs in a worker (batch of 1). */
  constructor(key: string, path: string, cap: number, batching: BatchSettings | undefined, warmRunsMs: readonly number[] = [], stamp?: string) {
    this.key = key
    this.path = path
    this.stamp = stamp
    this.cap = Math.max(1, cap)
    this.batching = batching
    this.queue = new LaneQueue(batching !== undefined)
    this.floor = new RunFloor(warmRunsMs)
    if (warmRunsMs.length) this.batchTimes.seed(1, quantileOf(warmRunsMs, 0.5))
  }

  /** Fast enough that a worker may hold a second unit of it (not before a run; never a batching model: its batch would form early). */
  get pipelined(): boolean {
    return !this.batching && pipelinedBy(this.times, this.longRuns)
  }

  /** A long run that will never be observed (set aside as stuck). */
  longRunSeen(): void {
    this.longRuns.seen()
  }

  /** Fastest run seen, as the floor counts it (0: nothing refused yet). */
  get minRunMs(): number {
    return this.floor.ms
  }

  /** Is a job with `leftMs` left at `now` refused (less than the model's fastest run; RunFloor.refuses)? */
  refuses(leftMs: number, now: number): boolean {
    return this.floor.refuses(leftMs, now)
  }

  /**
   * How long the head's batch may still wait, ms (≤ 0: send it now). Only for batching
   * lanes with a head; without batching a job never waits. `overheadMs`: the pool's
   * measured cost around a run (the hop to the worker and back, how late its wake-ups fire).
   */
  waitLeft(now: number, overheadMs = 0): number {
    const settings = this.batching
    if (!settings) return 0
    const queue = this.queue
    const head = queue.peek()!
    let rows = 0
    let earliest = Infinity
    for (let i = 0; i < queue.length; i++) {
      const job = queue.at(i)!
      if (job !== head && (rows + job.rows > settings.maxBatch || !stackable(head.inputs, job.inputs))) break
      rows += job.rows
      if (job.deadline < earliest) earliest = job.deadline
      if (rows >= settings.maxBatch) return 0
    }
    const run = this.batchTimes.estimate(rows)
    const kept = MARGIN_MS + overheadMs
    let latest = earliest - run - run * MARGIN_SHARE - kept
    // A job with an earlier deadline is not in this batch: it cannot start before this batch
    // leaves, and on a busy pool only once it has run, so the batch leaves in time for both runs.
    const behind = queue.earliest()!
    if (behind.deadline < earliest) {
      const both = run + this.batchTimes.estimate(behind.rows)
      latest = Math.min(latest, behind.deadline - both - both * MARGIN_SHARE - kept)
    }
    return Math.min(head.enqueuedAt + settings.maxDelayMs, latest) - now
  }

  /** The next unit's jobs: the head, and with batching the stackable jobs behind it up to max_batch rows. */
  take(): Job[] {
    const queue = this.queue
    const head = queue.shift()!
    const jobs = [head]
    const settings = this.batching
    if (!settings || head.rows >= settings.maxBatch) return jobs
    let rows = head.rows
    for (let job = queue.peek(); job !== undefined; job = queue.peek()) {
      if (rows + job.rows > settings.maxBatch || !stackable(head.inputs, job.inputs)) break
      queue.shift()
      jobs.push(job)
      rows += job.rows
    }
    return jobs
  }

  /**
   * The next unit (take()), without the jobs that have less time left than the model's
   * fastest run (rejected WOULD_MISS_DEADLINE); undefined if none was left. Sent at `now`
   * (sentAt: the dispatcher unsets it if the unit waits in its worker).
   */
  nextUnit(now: number, id: number): Unit | undefined {
    const jobs = this.take()
    let live = 0
    let rows = 0
    for (const job of jobs) {
      job.queued = false
      const left = job.deadline - now
      if (left < this.floor.ms && !job.probe) {
        job.reject(this.wouldMiss(left))
        continue
      }
      jobs[live++] = job
      rows += job.rows
    }
    if (live === 0) return undefined
    jobs.length = live
    const unit: Unit = { id, lane: this, jobs, rows, live, sentAt: now, flags: undefined, posted: 0, waiting: false }
    for (const job of jobs) job.unit = unit
    return unit
  }

  wouldMiss(left: number): ModelError {
    return wouldMiss(this.floor.ms, left)
  }

  /** A unit's outputs, one map per job: each job gets its own (with the batch's rows when it ran in one). */
  answered(unit: Unit, outputs: readonly TensorMap[], runMs: number): void {
    this.inflight--
    this.observe(unit.rows, unit.jobs.length, runMs)
    const { jobs } = unit
    for (let i = 0; i < jobs.length; i++) {
      const out = outputs[i]!
      if (jobs.length > 1) (out as Record<symbol, number>)[BATCH_ROWS] = unit.rows
      jobs[i]!.unit = null
      jobs[i]!.resolve(out)
    }
  }

  /** A stacked unit whose run failed, its parts then run alone: each job gets its own answer, and each answered part counts as a run of its own. */
  answeredApart(unit: Unit, answers: readonly PartAnswer[]): void {
    this.inflight--
    const { jobs } = unit
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]!
      const answer = answers[i]!
      job.unit = null
      if ('message' in answer) {
        job.reject(new ModelError(ModelErrorCode.MODEL_FAILED, answer.message))
        continue
      }
      this.observe(job.rows, 1, answer.runMs)
      job.resolve(answer.outputs)
    }
  }

  /** A unit that ended without outputs: its jobs fail with `err`, or (cancelled in the worker) their request's abort reason. */
  failed(unit: Unit, err: Error | undefined): void {
    this.inflight--
    for (const job of unit.jobs) {
      job.unit = null
      job.reject(err ?? (job.signal.reason as Error | undefined) ?? new ModelError(ModelErrorCode.MODEL_FAILED, 'cancelled'))
    }
  }

  /** A run's answer (`requests` requests, `rows` rows): its time joins the measurements. */
  observe(rows: number, requests: number, runMs: number): void {
    countRun(this, rows, requests, runMs)
    this.floor.observe(runMs, this.runs)
    this.longRuns.observe(runMs)
    this.times.add(runMs)
  }

  /**
   * Is the head's batch to be sent now? If not, a wake-up is armed for when it is (one per
   * lane, moved earlier when a new request brings the time forward); `onWake` gets how late it fired.
   */
  batchDue(now: number, overheadMs: number, onWake: (lateMs: number) => void): boolean {
    const wait = this.waitLeft(now, overheadMs)
    // Timers fire on whole milliseconds: a wait shorter than one is not worth the risk.
    if (wait <= TIMER_GRAIN_MS) {
      this.clearTimer()
      return true
    }
    // A long wait goes in steps, measured again at each wake-up, each set one grain early (timer-step.ts).
    const step = Math.min(wait - TIMER_GRAIN_MS, timerStep(wait))
    const at = now + step
    if (at < this.wakeAt) {
      clearTimeout(this.timer)
      this.wakeAt = at
      this.timer = setTimeout(() => {
        const late = Math.max(0, performance.now() - this.wakeAt)
        this.timer = undefined
        this.wakeAt = Infinity
        onWake(late)
      }, step)
    }
    return false
  }

  clearTimer(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.wakeAt = Infinity
  }
}
