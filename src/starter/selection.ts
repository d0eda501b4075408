// Member selection (an ensemble's `select:`), built once per ensemble. latency-aware does
// not start a member whose live p95 cannot fit the budget left (unless no member's fits:
// see lastResort); adaptive starts the fewest members (in order) such that, on sampled runs
// of every member, when they all answered alike and confidently enough, the strategy's
// decision from them alone equalled the whole ensemble's at least `accuracy_target` of the
// time; it starts the rest when they disagree, are less confident, fail or run late.
// Ensembles without `select` never reach this file: the starter checks one field.
import type { SelectConfig } from '../config/load.ts'
import { findProbabilitiesOutput, labelKey, meanRowMax, resolveVoteSource, type VoteSource } from '../collectors/outputs.ts'
import { ModelErrorCode } from '../errors.ts'
import type { TensorMap, TensorSpec } from '../tensor/index.ts'
import type { Strategy } from '../collectors/types.ts'
import type { Decision, ErrorInfo, Outcome } from '../types.ts'
import { TIMER_GRAIN_MS } from '../timer-step.ts'
import type { ModelStats } from './stats.ts'

/** Samples of a prefix size before its agreement rate is trusted. */
export const MIN_SAMPLES = 20
/** Confidence bars adaptive selection considers: the first members are enough when they agree with max probability at least this. */
export const BARS = [0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99] as const
/** A member with fewer live runs than this is started whatever its latency (nothing is known yet). */
const MIN_RUNS = 16
/** A member skipped this many times in a row is started anyway (a probe), so a recovered one is seen. */
const PROBE_EVERY = 32
/** After probes that answered in time, probes come up to this often. */
const PROBE_EVERY_MIN = 2

/** Whether to start a member (latency-aware rule): start it, skip it, or start it as a probe (Run tells how it did). */
export type Admit = 'start' | 'skip' | 'probe'

export const WOULD_MISS: ErrorInfo = Object.freeze({
  code: ModelErrorCode.WOULD_MISS_DEADLINE,
  message: 'not started: its live p95 latency does not fit the budget left (select: latency-aware)',
})
export const NOT_NEEDED: ErrorInfo = Object.freeze({
  code: ModelErrorCode.NOT_NEEDED,
  message: 'not started: the members started first agreed (select: adaptive)',
})

/**
 * Whether a run of `ms` fits in `leftMs`. A run cut at the deadline counts as the time it had,
 * and deadlines are decided within the timers' grain: a run within that grain of what is left
 * is a miss, or a member cut at every deadline would look as if it fitted on every other request.
 */
const fits = (ms: number, leftMs: number): boolean => ms + TIMER_GRAIN_MS < leftMs

export class Selection {
  readonly policy: 'latency-aware' | 'adaptive'
  private readonly stats: readonly ModelStats[]
  readonly n: number
  private readonly target: number
  private readonly period: number
  private readonly source: VoteSource | undefined
  private readonly probabilities: string | undefined
  /**
   * adaptive, per prefix size k and confidence bar t (slot k * BARS.length + t): sampled runs
   * where members 0..k-1 all answered alike with every max probability ≥ BARS[t], and those
   * of them where the strategy on that prefix alone decided what all members did.
   */
  readonly unanimous: Int32Array
  readonly matched: Int32Array
  /** Sampled runs with an answer: what the shares are of. */
  samples = 0
  /** The current choice: start `k` members, enough when they agree with max probability ≥ `bar`. */
  k: number
  bar = 0
  private requests = 0
  /** Skips in a row since the member last started; it is probed when this reaches probeEvery. */
  private readonly skippedInARow: Int32Array
  /** PROBE_EVERY, halved by each probe that answered in time (down to PROBE_EVERY_MIN). */
  private readonly probeEvery: Int32Array

  private readonly strategy: Strategy

  constructor(config: Exclude<SelectConfig, { policy: 'all' }>, stats: readonly ModelStats[], strategy: Strategy, outputs: readonly TensorSpec[]) {
    this.policy = config.policy
    this.stats = stats
    this.strategy = strategy
    this.n = stats.length
    this.target = config.policy === 'adaptive' ? config.accuracyTarget : 1
    this.period = config.policy === 'adaptive' ? Math.max(1, Math.round(1 / config.explore)) : 1
    const source = resolveVoteSource(outputs)
    this.source = source.kind === 'argmax' || source.kind === 'label' ? source : undefined
    this.probabilities = findProbabilitiesOutput(outputs)?.name
    this.unanimous = new Int32Array((this.n + 1) * BARS.length)
    this.matched = new Int32Array((this.n + 1) * BARS.length)
    this.skippedInARow = new Int32Array(this.n)
    this.probeEvery = new Int32Array(this.n).fill(PROBE_EVERY)
    this.k = this.n
  }

  /** Why adaptive selection cannot serve these outputs (it compares labels); undefined when it can. */
  static problem(config: SelectConfig, outputs: readonly TensorSpec[]): string | undefined {
    if (config.policy !== 'adaptive') return undefined
    const source = resolveVoteSource(outputs)
    return source.kind === 'argmax' || source.kind === 'label' ? undefined : 'select: adaptive compares the members\' labels: it needs a classification ensemble (a label or probabilities output)'
  }

  /**
   * latency-aware (and adaptive): whether member `i` can answer within `leftMs`, by its live
   * p95. `lastResort`: the member is started as a probe even when it would be skipped.
   */
  admit(i: number, leftMs: number, lastResort: boolean): Admit {
    const live = this.stats[i]!.live
    if (live.count < MIN_RUNS || fits(live.p95, leftMs)) {
      this.skippedInARow[i] = 0
      this.probeEvery[i] = PROBE_EVERY
      return 'start'
    }
    // Its p95 only moves when it runs: every so often it starts anyway.
    if (++this.skippedInARow[i]! < this.probeEvery[i]! && !lastResort) return 'skip'
    this.skippedInARow[i] = 0
    return 'probe'
  }

  /**
   * The member a request with `leftMs` starts although its p95 does not fit, when no member's
   * p95 fits: of those whose fastest recent run did fit, the one with the lowest p95 (the
   * first listed on a tie); -1 when some member fits, is not known yet, or none has a recent
   * run within `leftMs`. Skipping every member fails the request for certain, at once; this
   * one still answers in time on some runs, and those answers, as probes, bring its p95 back
   * after a stall that slowed every member (a busy box at start-up). A member none of whose
   * recent runs fit (one that hangs, or a budget below every member's time) is not worth
   * holding the request for: the request still fails at once.
   */
  lastResort(leftMs: number): number {
    let best = -1
    let bestP95 = Infinity
    for (let i = 0; i < this.n; i++) {
      const live = this.stats[i]!.live
      if (live.count < MIN_RUNS || fits(live.p95, leftMs)) return -1
      if (fits(live.fastest, leftMs) && live.p95 < bestP95) {
        best = i
        bestP95 = live.p95
      }
    }
    return best
  }

  /**
   * A probe of member `i` answered within the time it had: its run takes the place of the
   * slowest one kept, and the next probe comes twice as soon. A passing stall is forgotten
   * after a few probes, where new runs alone would take thousands of requests. (Its answer
   * is also recorded as a run, as every answer is: it displaces the slowest and adds itself.)
   */
  probeAnswered(i: number, ms: number): void {
    this.stats[i]!.live.replaceSlowest(ms)
    this.probeEvery[i] = Math.max(PROBE_EVERY_MIN, this.probeEvery[i]! >> 1)
  }

  /** A probe of member `i` failed, or was cut by the deadline: probes go back to every PROBE_EVERY-th request. */
  probeMissed(i: number): void {
    this.probeEvery[i] = PROBE_EVERY
  }

  /** The live p95 of member i, NaN when unknown. */
  p95(i: number): number {
    return this.stats[i]!.live.count < MIN_RUNS ? Number.NaN : this.stats[i]!.live.p95
  }

  /** adaptive: how many members this request starts at first (every member on a sampling run). */
  initial(): number {
    if (this.policy !== 'adaptive') return this.n
    return this.requests++ % this.period === 0 ? this.n : this.k
  }

  /**
   * Re-picks (k, bar): among the prefixes and bars whose decision matched the whole
   * ensemble's at least `accuracy_target` of the time (over MIN_SAMPLES runs at least), the
   * one expected to start fewest members: k, plus the rest whenever the first k do not
   * agree confidently enough. Every member when none qualifies.
   */
  private choose(): void {
    let best = this.n
    this.k = this.n
    this.bar = 0
    for (let k = 1; k < this.n; k++) {
      for (let t = 0; t < BARS.length; t++) {
        const seen = this.unanimous[k * BARS.length + t]!
        if (seen < MIN_SAMPLES || this.matched[k * BARS.length + t]! < this.target * seen) continue
        const expected = k + (this.n - k) * (1 - seen / this.samples)
        if (expected < best) {
          best = expected
          this.k = k
          this.bar = BARS[t]!
        }
      }
    }
  }

  /** A member's confidence: its mean max probability (1 without a probabilities output). */
  confidence(outputs: TensorMap): number {
    return this.probabilities === undefined ? 1 : meanRowMax(outputs[this.probabilities])
  }

  /** The label key of an answer, for comparing members (undefined for a member without the output). */
  key(outputs: TensorMap | null | undefined): string | undefined {
    return outputs == null || this.source === undefined ? undefined : labelKey(outputs, this.source)
  }

  /**
   * adaptive, after a run that started every member: for each prefix of members that all
   * answered alike (what lets an adaptive request stop there), replays the strategy on that
   * prefix with the rest not started, and counts whether it decides what all members did.
   */
  learn(outcomes: readonly (Outcome | undefined)[], decision: Decision): void {
    if (decision.kind !== 'answer') return
    const decided = this.key(decision.outputs)
    if (decided === undefined) return
    this.samples++
    let first: string | undefined
    let confidence = 1
    for (let k = 1; k < this.n; k++) {
      const o = outcomes[k - 1]
      if (o?.status !== 'ok') break
      const key = this.key(o.outputs)
      if (key === undefined || (first !== undefined && key !== first)) break
      first ??= key
      confidence = Math.min(confidence, this.confidence(o.outputs))
      const matched = this.replay(outcomes, k) === decided
      for (let t = 0; t < BARS.length && confidence >= BARS[t]!; t++) {
        this.unanimous[k * BARS.length + t]!++
        if (matched) this.matched[k * BARS.length + t]!++
      }
    }
    if (this.samples % 8 === 0 || this.samples <= MIN_SAMPLES) this.choose()
  }

  /** What the strategy decides from the first k outcomes, the others not started. */
  private replay(outcomes: readonly (Outcome | undefined)[], k: number): string | undefined {
    const collector = this.strategy.collector()
    let decision: Decision | undefined
    for (let i = 0; i < this.n && decision === undefined; i++) {
      decision = collector.onOutcome(i < k ? outcomes[i]! : { status: 'skipped', index: i, error: NOT_NEEDED, latencyMs: 0 })
    }
    decision ??= collector.onDeadline()
    return decision.kind === 'answer' ? this.key(decision.outputs) : undefined
  }
}

/** One request's adaptive state: the members started first, and whether they have agreed so far. */
export class AdaptiveRequest {
  readonly started: number
  private answered = 0
  private first: string | undefined
  /** Set once the rest were started, or found not needed. */
  resolved = false

  constructor(started: number) {
    this.started = started
  }

  /**
   * A started member's outcome: 'rest' when the others must be started now (a failure, a
   * disagreement), 'enough' when every member started first answered alike, else undefined.
   */
  onOutcome(outcome: Outcome, selection: Selection): 'rest' | 'enough' | undefined {
    if (this.resolved || outcome.index >= this.started) return undefined
    const key = outcome.status === 'ok' ? selection.key(outcome.outputs) : undefined
    if (key === undefined || (this.first !== undefined && key !== this.first)) return this.resolve('rest')
    // Agreeing, but less sure than the statistics say is enough.
    if (outcome.status === 'ok' && selection.bar > 0 && !(selection.confidence(outcome.outputs) >= selection.bar)) return this.resolve('rest')
    this.first ??= key
    return ++this.answered === this.started ? this.resolve('enough') : undefined
  }

  resolve<T extends 'rest' | 'enough'>(verdict: T): T {
    this.resolved = true
    return verdict
  }
}
