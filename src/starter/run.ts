// One predict, from fan-out to decision. The deadline is a timer and one AbortSignal:
// whichever comes first of decision, deadline or cancel (a client gone, a consumer
// stopping) settles the run, aborts every executor still working, and annotates each
// model. Late results are counted, never used.
import { ModelError, ModelErrorCode } from '../errors.ts'
import { requestRows } from '../collectors/outputs.ts'
import type { Collector } from '../collectors/types.ts'
import { RAN_VERSION, type BatchedOutputs, type InferContext } from '../executors/types.ts'
import type { TensorMap } from '../tensor/index.ts'
import type { Decision, Outcome, PredictRequest, PredictResult } from '../types.ts'
import { RunTrace } from '../telemetry/run-trace.ts'
import { activeTracer, withTraceOf } from '../telemetry/tracing.ts'
import { TIMER_GRAIN_MS, timerStep } from '../timer-step.ts'
import type { Admission } from './admission.ts'
import type { EnsembleRuntime } from './ensemble.ts'
import { annotateMembers, failure, NOT_STARTED } from './outcomes.ts'
import { AdaptiveRequest, NOT_NEEDED, WOULD_MISS } from './selection.ts'
import type { ShadowRunner } from './shadow.ts'
import type { RunHooks, RunScope } from './run-hooks.ts'
import { CANCELLED, runResult, type CancelCause } from './run-result.ts'

/** The abort reason executors see; one shared instance, since building an Error per request costs a stack capture. */
const DECIDED = new ModelError(ModelErrorCode.MODEL_FAILED, 'the request was decided or ran out of time')
/** startedAt of a model member selection decided not to start (its outcome says why). */
const SKIPPED = -2

export class Run implements InferContext {
  /** Settles once, with the result, whatever ends the run. */
  readonly result: Promise<PredictResult>
  private readonly started = performance.now()
  readonly deadline: number
  /** The member being started (InferContext.member). */
  member = 0
  /** Whether that member may be spared (InferContext.spareable). */
  spareable = false
  /** Made on first use: an executor that finishes at once (an inline model) never needs one. */
  private controller: AbortController | undefined
  private readonly collector: Collector
  private readonly outcomes: (Outcome | undefined)[]
  /** performance.now() when each model was started; NOT_STARTED = not (yet: delayed). */
  private readonly startedAt: number[]
  private deadlineTimer: NodeJS.Timeout | undefined
  private delayTimers: NodeJS.Timeout[] | undefined
  /** The final result, once decided (with its shadows' answers, once they are in). */
  private settled: PredictResult | undefined
  /** Date.now() at the decision: the serving records' `time`. */
  private decidedAt = 0
  /** Shadows run for this predict and its record waits for them: late answers wait too, so the record goes first. */
  private shadowsRunning = false
  /** Late answers that came while the shadows ran (made on first use). */
  private heldLate: Outcome[] | undefined
  /** Spans of this predict; undefined (and never touched) when tracing is off. */
  private trace: RunTrace | undefined
  private readonly ens: EnsembleRuntime
  private readonly req: PredictRequest
  private readonly budgetMs: number
  private readonly hooks: RunHooks
  private readonly scope: RunScope
  /** Released when the run ends; null when the frontend holds the slot (REST). */
  private readonly admission: Admission | null
  private resolve!: (result: PredictResult) => void
  private cancelled = false
  /** Listens on `req.signal`, when the caller passed one. */
  private onAbort: (() => void) | undefined
  /** select: adaptive, when this request started only some members; undefined otherwise. */
  private adaptive: AdaptiveRequest | undefined
  /** select: adaptive, starts the rest if the first ones have not agreed by their live p95. */
  private lateTimer: NodeJS.Timeout | undefined
  /** select: adaptive, a run that started every member: its outcomes feed the agreement statistics. */
  private sampling = false
  /** select: members started as probes (bit i), until their outcome says how they did. */
  private probes = 0
  /** select: the member started even if it would be skipped, because every member would be (-1: none). */
  private lastResort = -1

  constructor(ens: EnsembleRuntime, req: PredictRequest, budgetMs: number, hooks: RunHooks, scope: RunScope, admission: Admission | null) {
    this.ens = ens
    this.req = req
    this.budgetMs = budgetMs
    this.hooks = hooks
    this.scope = scope
    this.admission = admission
    this.result = new Promise<PredictResult>((resolve) => (this.resolve = resolve))
    const n = ens.executors.length
    this.deadline = this.started + budgetMs
    this.collector = ens.strategy.collector(requestRows(req.inputs, ens.inputs))
    this.outcomes = new Array<Outcome | undefined>(n)
    this.startedAt = new Array<number>(n).fill(NOT_STARTED)
  }

  start(): void {
    const tracer = activeTracer()
    if (tracer) this.trace = new RunTrace(tracer, this.ens, this.req, this.budgetMs)
    const { signal } = this.req
    if (signal) {
      if (signal.aborted) return this.cancel()
      this.onAbort = () => this.cancel()
      signal.addEventListener('abort', this.onAbort, { once: true })
    }
    this.armDeadline(this.budgetMs)
    const n = this.ens.executors.length
    const selection = this.ens.selection
    const first = selection === undefined ? n : selection.initial()
    if (selection !== undefined) this.lastResort = selection.lastResort(this.deadline - performance.now())
    if (selection?.policy === 'adaptive') {
      if (first < n) this.adaptive = new AdaptiveRequest(first)
      else this.sampling = true
    }
    const delays = this.ens.strategy.startDelaysMs
    for (let i = 0; i < first; i++) {
      const delay = delays?.[i] ?? 0
      if (delay <= 0) this.launch(i)
      // A member before it skipped (selection) or failed at once: the held-back ones started then.
      else if (this.startedAt[i] === NOT_STARTED && !this.settled) (this.delayTimers ??= []).push(setTimeout(() => this.launch(i), delay))
    }
    if (this.adaptive && !this.settled && !this.adaptive.resolved) this.armLate(this.adaptive)
  }

  private armDeadline(leftMs: number): void {
    // In steps, so the timer that decides is short (timer-step.ts).
    this.deadlineTimer = setTimeout(Run.deadlineStep, timerStep(leftMs), this)
  }

  /** The deadline timer fired: decide if the deadline has come (within the timers' 1 ms grain), or wait the rest. */
  private static deadlineStep(run: Run): void {
    const left = run.deadline - performance.now()
    if (left >= TIMER_GRAIN_MS) run.armDeadline(left)
    else run.finish(run.collector.onDeadline(), true)
  }

  /**
   * select: adaptive: the members held back start if the first ones have not agreed by a
   * quarter more than the slowest one's live p95 (half the budget while that is unknown).
   */
  private armLate(adaptive: AdaptiveRequest): void {
    let p95 = 0
    for (let i = 0; i < adaptive.started; i++) p95 = Math.max(p95, this.ens.selection!.p95(i))
    const lateMs = p95 >= 0 ? p95 * 1.25 : this.budgetMs / 2
    if (lateMs < this.budgetMs) this.lateTimer = setTimeout(() => adaptive.resolved || this.startRest(adaptive.resolve('rest')), lateMs)
  }

  private startRest(verdict: 'rest' | 'enough'): void {
    clearTimeout(this.lateTimer)
    const n = this.ens.executors.length
    for (let i = this.adaptive!.started; i < n && !this.settled; i++) {
      if (verdict === 'rest') this.launch(i)
      else if (this.startedAt[i] === NOT_STARTED) {
        // The first ones agreed: the rest are not needed, and the collector decides without them.
        this.startedAt[i] = SKIPPED
        this.onOutcome({ status: 'skipped', index: i, error: NOT_NEEDED, latencyMs: 0 })
      }
    }
  }

  /** Decided, cancelled or out of time: work not started yet for it need not start. */
  get over(): boolean {
    return this.settled !== undefined
  }

  /** The run is its executors' context: the deadline, and a signal made only when one asks for it. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController()
      if (this.settled) this.controller.abort(DECIDED) // asked for after the decision: already over
    }
    return this.controller.signal
  }

  /**
   * The client went away or the caller stops: every model still working is aborted (queued
   * jobs dropped, remote calls cancelled) and the result is CANCELLED. No-op once decided.
   */
  cancel(cause: CancelCause = 'client'): void {
    if (this.settled !== undefined) return
    this.cancelled = true
    this.finish(CANCELLED[cause], false)
  }

  private launch(index: number): void {
    if (this.settled || this.startedAt[index] !== NOT_STARTED) return
    const selection = this.ens.selection
    if (selection !== undefined) {
      const admit = selection.admit(index, this.deadline - performance.now(), index === this.lastResort)
      if (admit === 'skip') {
        this.startedAt[index] = SKIPPED
        this.onOutcome({ status: 'skipped', index, error: WOULD_MISS, latencyMs: 0 })
        return
      }
      if (admit === 'probe' && index < 32) this.probes |= 1 << index
    }
    const at = performance.now()
    this.startedAt[index] = at
    const executor = this.ens.executors[index]
    if (!executor) return
    let pending: Promise<TensorMap>
    try {
      this.member = index
      this.spareable = this.ens.strategy.spareable?.[index] ?? index > 0
      pending = this.trace ? this.trace.launch(index, () => executor.infer(this.req.inputs, this)) : executor.infer(this.req.inputs, this)
    } catch (err) {
      pending = Promise.reject(err as Error)
    }
    pending.then(
      (outputs) => this.onOutcome({ status: 'ok', index, outputs, latencyMs: performance.now() - at }),
      (err: unknown) => this.onOutcome(failure(index, err, performance.now() - at)),
    )
  }

  private onOutcome(outcome: Outcome): void {
    if (this.probes !== 0 && outcome.index < 32 && (this.probes & (1 << outcome.index)) !== 0) this.probed(outcome.index, outcome.status === 'ok' ? outcome.latencyMs : -1)
    if (this.settled) {
      // Decided already: a cancelled or late model. Its answer is never used.
      this.trace?.settled(outcome, true)
      if (outcome.status === 'ok') {
        const version = (outcome.outputs as BatchedOutputs)[RAN_VERSION]
        const stats = this.ens.stats[outcome.index]!
        ;(version === undefined ? stats : stats.ofVersion(version)).late++
        if (this.shadowsRunning) (this.heldLate ??= []).push(outcome)
        else this.hooks.onLate?.(this.settled, outcome.index, outcome, this.req, this.decidedAt)
      }
      return
    }
    this.outcomes[outcome.index] = outcome
    this.trace?.settled(outcome, false)
    // A failure starts any model held back by a start delay (fallback_after_ms) at once: fall through now.
    // Also while start() is still in its loop (a member skipped or failed synchronously), before any delay timer exists.
    if (outcome.status !== 'ok' && this.ens.strategy.startDelaysMs) for (let i = 0; i < this.startedAt.length; i++) this.launch(i)
    const decision = this.collector.onOutcome(outcome)
    if (decision) return this.finish(decision, false)
    const verdict = this.adaptive?.onOutcome(outcome, this.ens.selection!)
    if (verdict !== undefined) this.startRest(verdict)
  }

  /** A member started as a probe ended, answered after `answeredMs` (-1: no answer): did it answer in the time it had? */
  private probed(index: number, answeredMs: number): void {
    this.probes &= ~(1 << index)
    if (answeredMs >= 0 && this.startedAt[index]! + answeredMs < this.deadline) this.ens.selection!.probeAnswered(index, answeredMs)
    else this.ens.selection!.probeMissed(index)
  }

  private finish(decision: Decision, atDeadline: boolean): void {
    if (this.settled) return
    const now = performance.now()
    clearTimeout(this.deadlineTimer)
    if (this.delayTimers) for (const t of this.delayTimers) clearTimeout(t)
    if (this.adaptive) clearTimeout(this.lateTimer)
    // Every executor still working stops here: queued jobs are dropped, remote calls aborted.
    this.controller?.abort(DECIDED)
    // A probe still out at the deadline did not answer in time; one cut by the decision (or a cancel) says nothing either way.
    if (atDeadline) for (let i = 0; this.probes !== 0; i++) if ((this.probes & (1 << i)) !== 0) this.probed(i, -1)
    this.probes = 0
    const { ens } = this
    const chosen = decision.kind === 'answer' ? decision.chosen : null
    const heldBackFrom = this.adaptive === undefined ? Infinity : this.adaptive.started
    const members = annotateMembers(ens, this.outcomes, this.startedAt, chosen, now, this.deadline, atDeadline, heldBackFrom, this.cancelled, this)
    const result = runResult(ens, this.req, decision, chosen, members, this.budgetMs, now - this.started, this.cancelled)
    this.decidedAt = Date.now()
    this.settled = result
    if (this.onAbort) this.req.signal?.removeEventListener('abort', this.onAbort)
    this.admission?.leave()
    // A predict whose shadows run keeps its config's executors until they are done.
    const shadow = ens.shadow !== undefined && ens.shadow.sampled() ? ens.shadow : undefined
    if (shadow === undefined && --this.scope.inFlight === 0) this.scope.onIdle?.()
    ens.requestStats.record(result.error ? result.error.code : 'ok', result.elapsed_ms, this.budgetMs, atDeadline, members.started)
    if (this.sampling) ens.selection!.learn(this.outcomes, decision)
    this.trace?.finish(result, atDeadline)
    this.resolve(result)
    if (shadow === undefined) this.hooks.onResult?.(result, this.req, ens, this.decidedAt)
    else this.runShadows(shadow, result)
  }

  /**
   * After the answer: the shadow members, then the serving record with their answers, then
   * the late answers that came meanwhile (a predict's record goes before its late ones).
   */
  private runShadows(shadow: ShadowRunner, result: PredictResult): void {
    this.shadowsRunning = true
    void shadow.run(this.req.inputs, result.outputs).then(
      // The copy is what the records are made from: it carries the predict's trace id too.
      (shadows) => this.recordShadowed(withTraceOf(result, { ...result, shadows })),
      () => this.recordShadowed(result),
    ).catch(() => undefined) // the hooks only queue records; nothing here can fail the predict
  }

  /** The serving record of a shadowed predict, then the late answers held meanwhile (even if the record's hook threw). */
  private recordShadowed(recorded: PredictResult): void {
    if (--this.scope.inFlight === 0) this.scope.onIdle?.()
    // Late answers name the object the record was made from (sampling remembers it).
    this.settled = recorded
    this.shadowsRunning = false
    const held = this.heldLate
    this.heldLate = undefined
    try {
      this.hooks.onResult?.(recorded, this.req, this.ens, this.decidedAt)
    } finally {
      if (held) for (const o of held) this.hooks.onLate?.(recorded, o.index, o, this.req, this.decidedAt)
    }
  }
}
