// Shadow members (`shadow: { models, sample }` on an ensemble): on a sample of predicts, once
// the answer is decided and sent, the shadow models run on the same inputs with their own
// time limit (the ensemble's max budget, not the request's). They are never chosen, never
// delay the answer, and take no time from the real members. Their answers, and whether each
// agrees with the answer given, join the predict's serving record; agreement per shadow model
// is kept for metrics.
import { labelKey, meanOf, resolveVoteSource, type VoteSource } from '../collectors/outputs.ts'
import type { ModelConfig } from '../config/load.ts'
import { inferOffPath, versionOf, type Executor } from '../executors/types.ts'
import type { TensorMap, TensorSpec } from '../tensor/index.ts'
import type { ShadowAnswer } from '../types.ts'
import { traceShadow } from '../telemetry/run-trace.ts'
import { activeTracer } from '../telemetry/tracing.ts'
import { memberVersion } from './outcomes.ts'
import { roundMs } from './stats.ts'

/**
 * Per shadow model, since the ensemble was first built (kept across reloads with the
 * ensemble's counters): its runs by result, each counted once, as it ends (a run still going
 * is in none, so no result's count ever goes down).
 */
export class ShadowCounts {
  /** Failed, or over its time limit. */
  errors = 0
  /** Answered and compared with the answer given (agreed or not). */
  compared = 0
  /** Of those compared, the ones that agreed. */
  agreed = 0
  /** Answered with nothing to compare (`agrees: null`): the predict gave no answer, or either answer lacks what is compared. */
  uncompared = 0
}

/** Shadow runs of one ensemble in flight at most: past it a sampled predict skips its shadows (they never pile up). */
const MAX_IN_FLIGHT = 64
/** Values agree within this relative difference (regression). */
const VALUE_RTOL = 0.01

export interface ShadowMember {
  readonly model: ModelConfig
  readonly executor: Executor
  readonly counts: ShadowCounts
}

export class ShadowRunner {
  readonly members: readonly ShadowMember[]
  readonly sample: number
  private readonly timeLimitMs: number
  private readonly source: VoteSource | undefined
  private inFlight = 0

  constructor(members: readonly ShadowMember[], sample: number, timeLimitMs: number, outputs: readonly TensorSpec[]) {
    this.members = members
    this.sample = sample
    this.timeLimitMs = timeLimitMs
    const source = resolveVoteSource(outputs)
    this.source = source.kind === 'invalid' ? undefined : source
  }

  /** Whether this predict runs the shadows (the sample, and room for them). */
  sampled(): boolean {
    return this.inFlight < MAX_IN_FLIGHT && Math.random() < this.sample
  }

  /** Runs every shadow on `inputs`; resolves with their answers compared to `given` (never rejects). */
  async run(inputs: TensorMap, given: TensorMap | null): Promise<ShadowAnswer[]> {
    this.inFlight++
    try {
      return await Promise.all(this.members.map((m) => this.runOne(m, inputs, given)))
    } finally {
      this.inFlight--
    }
  }

  private async runOne(member: ShadowMember, inputs: TensorMap, given: TensorMap | null): Promise<ShadowAnswer> {
    const { name } = member.model
    const version = memberVersion(member.model, member.executor)
    const started = performance.now()
    try {
      const tracer = activeTracer()
      const traced = tracer ? (run: () => Promise<TensorMap>) => traceShadow(tracer, member.model, version, run, (o) => answeredVersion(member, o)) : undefined
      // A shadow is never needed by a decision: spareable.
      const outputs = await inferOffPath(member.executor, inputs, this.timeLimitMs, `shadow over its ${this.timeLimitMs} ms limit`, true, traced)
      const agrees = this.agrees(outputs, given)
      if (agrees === null) member.counts.uncompared++
      else {
        member.counts.compared++
        if (agrees) member.counts.agreed++
      }
      return { name, version: answeredVersion(member, outputs), status: 'ok', latency_ms: roundMs(performance.now() - started), agrees, outputs }
    } catch (err) {
      member.counts.errors++
      const e = err as { code?: string; message?: string }
      return { name, version, status: 'error', latency_ms: roundMs(performance.now() - started), agrees: null, error: { code: e.code ?? 'MODEL_FAILED', message: String(e.message ?? err) } }
    }
  }

  private agrees(outputs: TensorMap, given: TensorMap | null): boolean | null {
    const source = this.source
    if (!given || !source) return null
    if (source.kind === 'regression') {
      const a = meanOf(outputs[source.name])
      const b = meanOf(given[source.name])
      if (Number.isNaN(a) || Number.isNaN(b)) return null
      return Math.abs(a - b) <= VALUE_RTOL * Math.max(1, Math.abs(b))
    }
    const mine = labelKey(outputs, source)
    const theirs = labelKey(given, source)
    return mine === undefined || theirs === undefined ? null : mine === theirs
  }
}

/** The version that answered: a canary's, or the one a remote model's answer named. */
const answeredVersion = (member: ShadowMember, outputs: TensorMap): string => versionOf(outputs) ?? memberVersion(member.model, member.executor)
