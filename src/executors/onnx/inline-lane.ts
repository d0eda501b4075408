// The main thread's inference lane. The sessions of inline models (inline.ts) share it, as
// a thread's sessions do (session.ts): runs there happen one after another whatever we
// submit, so only a few are handed to onnxruntime at once (enough that the lane never waits
// for the event loop, and completions come in batches) and the rest wait here,
// most-preferred members first: a less-preferred member whose request has been decided
// meanwhile (deadline-fallback's preferred model answered, two votes agreed) is dropped
// before it costs anything. Serving members in order also runs one session many times in a
// row, which keeps its memory in cache (measured: an ensemble's members interleaved run ~15%
// slower). Each run handed over is its own setImmediate callback (as in onnxruntime-node's
// public run; a fallback late enough runs in the refill itself, see mayRunNow; while a gRPC
// answer waits to be sent, 8 per turn, the rest at the next: inline-turns.ts); on the native
// session (native.ts) the request is checked again just before the run. A model with
// `batching` gathers its runs of one turn into one callback and runs them stacked
// (inline-batch.ts): nothing waits for a batch on the event loop.
import type ort from 'onnxruntime-node'
import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { Tensor } from '../../tensor/index.ts'
import { fromOrtTensor } from '../../tensor/ort.ts'
import type { InlineModel } from './inline.ts'
import type { SyncThreadSession } from './session.ts'
import { DEPTH, depthFor, JobQueue, needed, NOT_NEEDED, OFF_PATH, QUEUES, queueFor, secondTier, SPAREABLE_DEPTH, type Job } from './inline-queue.ts'
import { runStacked } from './inline-batch.ts'
import { ortMessage } from './ort-message.ts'
import { Turns } from './inline-turns.ts'

/** The reason a run of a model being closed (unloaded, replaced by a reload) is refused. */
export const UNLOADED = new ModelError(ModelErrorCode.MODEL_FAILED, 'model unloaded', true)

/** A needed member queued behind later positions for this long goes first (see InlineLane.pick). */
const AGED_MS = 1

/** A queue this long is swept of requests already decided (amortized: at most once per as many pushes). */
const SWEEP_AT = 4 * DEPTH

/**
 * A spareable member queued for this share of the time its request had left is needed after
 * all (urgent): it goes first and may fill the lane. A deadline-fallback's fallback is spareable,
 * but is what answers when its preferred model is late: under a burst it would miss the deadline.
 */
const URGENT_SHARE = 0.5

/** Urgent members run in refills (not on a callback of their own) per turn of the event loop: see InlineLane.mayRunNow. */
const URGENT_PER_TURN = SPAREABLE_DEPTH

/**
 * Whether a needed `head` that has waited past AGED_MS goes before the queue chosen so far for
 * that (`aged`): the first such queue stays, but a run off any request's path (`off`) gives way
 * to a live head that is a request's urgent spare member (a fallback) or the older.
 */
const overtakes = (head: Job, aged: JobQueue | undefined, off: JobQueue): boolean =>
  aged === undefined || (aged === off && (head.spareable || head.queuedAt < aged.peek()!.queuedAt))

/** The main thread's lane: up to DEPTH runs submitted (fewer for spareable members), the rest waiting by queue (queueFor), then in order. */
export class InlineLane {
  private readonly queues: JobQueue[] = Array.from({ length: QUEUES }, () => new JobQueue())
  private queued = 0
  /** Urgent runs taken in refills since the event loop's last turn (mayRunNow). */
  urgentThisTurn = 0
  /** Runs handed over, each run at its callback or, while a gRPC answer waits to be sent, at a later turn (inline-turns.ts). */
  readonly turns = new Turns((job) => this.runNow(job, job.model.session as SyncThreadSession))
  private submitted = 0
  private refilling = false
  /** When the lane last finished a run: a run's own time excludes its wait behind the one before. */
  private freeAt = 0

  submit(job: Job): void {
    const priority = queueFor(job.ctx)
    // Not queued yet, its urgentAt is 0 (needed) or Infinity (spareable): no clock read on this path.
    if (this.submitted < depthFor(job, 0) && !this.waitingUpTo(priority)) return this.start(job)
    const queue = this.queues[priority]!
    const now = performance.now()
    job.queuedAt = now
    if (job.spareable) job.urgentAt = now + (job.ctx.deadline - now) * URGENT_SHARE
    queue.push(job)
    this.queued++
    // Less-preferred members wait while more-preferred ones keep coming: their decided requests are swept out.
    if (queue.length >= SWEEP_AT && queue.length % SWEEP_AT === 0) this.queued -= queue.sweep()
  }

  private start(job: Job): void {
    const model = job.model
    if (model.closed) return job.reject(UNLOADED)
    const session = model.session
    if (session.sync) {
      this.submitted++
      model.inRuntime++
      const batches = model.batches
      if (batches === undefined) setImmediate(runSync, this, job)
      else if (batches.gather(job) === 1) setImmediate(runGathered, this, model, session)
      return
    }
    let running: Promise<ort.InferenceSession.ReturnType>
    try {
      running = session.run(job.inputs)
    } catch (err) {
      return job.reject(new ModelError(ModelErrorCode.MODEL_FAILED, ortMessage(err)))
    }
    this.submitted++
    model.inRuntime++
    const submitted = performance.now()
    running.then(
      (results) => {
        const done = performance.now()
        model.times.add(done - (submitted > this.freeAt ? submitted : this.freeAt))
        this.freeAt = done
        this.settle(job, results)
      },
      (err: unknown) => {
        this.freeAt = performance.now()
        job.reject(new ModelError(ModelErrorCode.MODEL_FAILED, ortMessage(err)))
        this.ended(model)
      },
    )
  }

  /**
   * A native run's turn: run it now, unless its request no longer needs it (one handed over
   * before its model was closed still runs: close waits for it). Its time, or -1 if no answer.
   */
  runNow(job: Job, session: SyncThreadSession): number {
    const model = job.model
    if (job.ctx.over) {
      job.reject(NOT_NEEDED)
      this.ended(model)
      return -1
    }
    const started = performance.now()
    let results: ort.InferenceSession.ReturnType
    try {
      results = session.run(job.inputs)
    } catch (err) {
      job.reject(new ModelError(ModelErrorCode.MODEL_FAILED, ortMessage(err)))
      this.ended(model)
      return -1
    }
    this.freeAt = performance.now()
    const ms = this.freeAt - started
    model.times.add(ms)
    return this.settle(job, results) ? ms : -1
  }

  /** A batching model's turn: the runs gathered since its last, decided ones dropped, in as few stacked runs as max_batch allows. */
  runGathered(model: InlineModel, session: SyncThreadSession): void {
    const batches = model.batches!
    const { dropped, groups } = batches.take()
    for (const job of dropped) {
      job.reject(NOT_NEEDED)
      this.ended(model)
    }
    for (const group of groups) {
      if (group.jobs.length === 1) {
        const ms = this.runNow(group.jobs[0]!, session)
        // Answered runs only, as the workers count theirs.
        if (ms >= 0) batches.observe(group.rows, 1, ms)
        continue
      }
      const ms = runStacked(session, group)
      if (ms < 0) {
        // The stacked run failed: each job runs alone, so one request's input fails only its own.
        for (let i = 0; i < group.jobs.length; i++) {
          const one = this.runNow(group.jobs[i]!, session)
          if (one >= 0) batches.observe(group.rowsEach[i]!, 1, one)
        }
        continue
      }
      this.freeAt = performance.now()
      model.times.add(ms)
      for (let i = 0; i < group.jobs.length; i++) this.ended(model)
      model.observe()
      batches.observe(group.rows, group.jobs.length, ms)
    }
  }

  /** Answers the job with the run's results; false when they did not convert (the job is rejected). */
  private settle(job: Job, results: ort.InferenceSession.ReturnType): boolean {
    let answered = false
    try {
      const outputs: Record<string, Tensor> = {}
      for (const name in results) outputs[name] = fromOrtTensor(name, results[name]!)
      job.model.ran++
      job.model.observe()
      job.resolve(outputs)
      answered = true
    } catch (err) {
      job.reject(new ModelError(ModelErrorCode.MODEL_FAILED, ortMessage(err)))
    }
    this.ended(job.model)
    return answered
  }

  /**
   * A run left onnxruntime: the lane is refilled once its answer has been collected. The
   * refill is queued after the reaction the resolve just queued (the Run's: executors hand
   * it this promise itself), so a request decided by this answer is known to be over by then.
   */
  private ended(model: InlineModel): void {
    this.submitted--
    if (--model.inRuntime === 0) model.drained?.()
    if (this.queued === 0 || this.refilling) return
    this.refilling = true
    queueMicrotask(this.refill)
  }

  private readonly refill = (): void => {
    this.refilling = false
    const now = performance.now()
    while (this.queued > 0 && this.submitted < DEPTH) {
      const queue = this.pick(now)
      if (!queue) return
      const job = queue.shift()!
      this.queued--
      if (job.ctx.over) {
        job.reject(NOT_NEEDED)
        continue
      }
      if (!job.spareable || job.urgentAt > now || !this.mayRunNow(job)) {
        this.start(job)
        continue
      }
      this.submitted++
      job.model.inRuntime++
      this.runNow(job, job.model.session as SyncThreadSession)
      // Its answer may decide its request, known only once the reaction it queued has run:
      // the next pick waits for the refill its end queued behind that reaction.
      return
    }
  }

  /**
   * Whether an urgent member (a request's fallback that has waited half its time) may run now,
   * in this refill: on a setImmediate callback of its own it would run a turn of the event
   * loop later, and under a burst a turn takes several ms, enough to miss its deadline. A
   * native session without batching only; not a run off any request's path (no client waits
   * on it: urgent, it goes first, on its own callback); URGENT_PER_TURN at a time, counted
   * again from the next setImmediate (a turn may hold the end of one count and the next), so
   * a crowd of them cannot hold the event loop (worker answers and deadline timers wait).
   */
  private mayRunNow(job: Job): boolean {
    const model = job.model
    if (model.closed || !model.session.sync || model.batches !== undefined || job.ctx.offPath === true) return false
    if (this.urgentThisTurn === URGENT_PER_TURN) return false
    if (this.urgentThisTurn++ === 0) setImmediate(newTurn, this)
    return true
  }

  /**
   * The queue to take from: the first whose head may start, unless a later one's head is
   * needed (or urgent) and has waited past AGED_MS (under sustained load the first position
   * never empties, and requests that need their later members must not wait for it to). A
   * decided head is dropped at once, whatever queue it heads. Position 1 and the spare runs off
   * any request's path share a place in that order (secondTier); a later live head that has
   * waited goes before such a run too if it is urgent spare (a fallback) or the older.
   */
  private pick(now: number): JobQueue | undefined {
    const tier = secondTier(this.queues[1]!, this.queues[OFF_PATH]!, this.submitted, now)
    let first: JobQueue | undefined
    let aged: JobQueue | undefined
    for (let i = 0; i < this.queues.length; i++) {
      const queue = this.queues[i]!
      const head = queue.peek()
      if (!head) continue
      if (head.ctx.over) return queue // dropping it costs nothing
      if (this.submitted >= depthFor(head, now) || ((i === 1 || i === OFF_PATH) && queue !== tier)) continue
      const waited = needed(head, now) && now - head.queuedAt > AGED_MS
      if (!first) {
        first = queue
        if (waited && i === OFF_PATH) aged = queue // a later live head goes before it only as below
      }
      else if (waited && overtakes(head, aged, this.queues[OFF_PATH]!)) aged = queue
    }
    return aged ?? first
  }

  /** Jobs of this priority or a more preferred one waiting (they go first). */
  private waitingUpTo(priority: number): boolean {
    if (this.queued === 0) return false
    for (let p = 0; p <= priority; p++) if (this.queues[p]!.length > 0) return true
    return false
  }
}

/** setImmediate's callback for a native run: one module function given its arguments, not a closure made per run. */
function runSync(on: InlineLane, job: Job): void {
  on.turns.handed(job)
}

/** The event loop's next turn: urgent members may run in refills again. */
function newTurn(on: InlineLane): void {
  on.urgentThisTurn = 0
}

/** The same for a batching model's gathered runs. */
function runGathered(on: InlineLane, model: InlineModel, session: SyncThreadSession): void {
  on.runGathered(model, session)
}
