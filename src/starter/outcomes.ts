// What a predict's models and decision come to: a model's failure as its outcome, each
// model's annotation, and the error a failed decision gives the request (one cause shared
// by every failure wins).
import { ModelError, ModelErrorCode } from '../errors.ts'
import type { ModelConfig } from '../config/load.ts'
import { BATCH_ROWS, RAN_VERSION, ROUTED_VERSION, versionOf, type BatchedOutputs, type Executor, type InferContext, type RoutesVersions } from '../executors/types.ts'
import type { Decision, ErrorInfo, ModelAnnotation, Outcome } from '../types.ts'
import type { UpstreamVersioned } from '../executors/remote/executor.ts'
import type { EnsembleRuntime } from './ensemble.ts'
import { NOT_NEEDED } from './selection.ts'
import { roundMs } from './stats.ts'

/** A member's start time before it starts (not yet: a start delay); any clock reading, 0 included, is a start. */
export const NOT_STARTED = -1

const notReached = (message: string): ErrorInfo => Object.freeze({ code: ModelErrorCode.NOT_NEEDED, message })

/** The error of a member not started when its run ended, by how it ended: each says `before` what. */
const notStarted = (before: string): Readonly<Record<'decided' | 'deadline' | 'cancelled', ErrorInfo>> =>
  Object.freeze({
    decided: notReached(`not started: the request was decided before ${before}`),
    deadline: notReached(`not started: the deadline came before ${before}`),
    cancelled: notReached(`not started: the request was cancelled before ${before}`),
  })

/** The error of a member held back by a start delay (`fallback_after_ms`) when its run ended, by how it ended. */
const NOT_REACHED = notStarted('its start delay (fallback_after_ms) ran out')

/** The error of a member with no start delay that was never started: the request ended as it started. */
const NOT_LAUNCHED = notStarted('it was started')

/** The error of a member adaptive selection held back when its run ended, by how it ended. */
const HELD_BACK = Object.freeze({
  decided: NOT_NEEDED,
  deadline: notReached('not started: the deadline came while the members started first were still out (select: adaptive)'),
  cancelled: notReached('not started: the request was cancelled while the members started first were still out (select: adaptive)'),
})

/** The version a run still out went to: a lookup only a routing executor answers. */
const routedVersion = (executor: Executor | undefined, ctx: InferContext): string | undefined =>
  (executor as Partial<RoutesVersions> | undefined)?.[ROUTED_VERSION]?.(ctx)

/**
 * The version a member's annotations name when its answer names none: a remote model's
 * upstream version when YAML pins none (read at load, then the newest its answers named: a
 * field, no allocation per request), else the configured one.
 */
export const memberVersion = (meta: ModelConfig, executor: Executor | undefined): string =>
  (executor as Partial<UpstreamVersioned> | undefined)?.upstreamVersion ?? meta.version

/** A model that threw or was refused, as its outcome (`skipped` when it never ran). */
export function failure(index: number, err: unknown, latencyMs: number): Outcome {
  const version = (err as { [RAN_VERSION]?: string } | undefined)?.[RAN_VERSION]
  if (err instanceof ModelError) {
    const error = { code: err.code, message: err.message }
    return err.skipped ? { status: 'skipped', index, error, latencyMs, version } : { status: 'error', index, error, latencyMs, version }
  }
  return { status: 'error', index, error: { code: ModelErrorCode.MODEL_FAILED, message: String((err as Error)?.message ?? err) }, latencyMs, version }
}

/** A model's annotation from its outcome: the version that ran (`served` unless another did), and the batch it ran in. */
export function annotate(meta: ModelConfig, served: string, o: Outcome, used: boolean): ModelAnnotation {
  if (o.status !== 'ok') return { name: meta.name, version: o.version ?? served, status: o.status, latency_ms: roundMs(o.latencyMs), used: false, error: o.error }
  const outputs = o.outputs as BatchedOutputs
  const batch = outputs[BATCH_ROWS]
  const version = versionOf(outputs) ?? served
  return batch === undefined
    ? { name: meta.name, version, status: 'ok', latency_ms: roundMs(o.latencyMs), used }
    : { name: meta.name, version, status: 'ok', latency_ms: roundMs(o.latencyMs), used, batch }
}

/** The request's error for a failed decision. */
export function failError(decision: Extract<Decision, { kind: 'fail' }>, commonCause: string | null, cancelled: boolean): ErrorInfo {
  if (cancelled) return { code: 'CANCELLED', message: 'cancelled before the answer: the client went away or the gateway is stopping' }
  if (decision.code === 'ALL_MODELS_FAILED' && commonCause === ModelErrorCode.OVERLOADED) {
    return { code: 'OVERLOADED', message: 'every model queue is full' }
  }
  if (decision.code === 'ALL_MODELS_FAILED' && commonCause === ModelErrorCode.WOULD_MISS_DEADLINE) {
    return { code: 'DEADLINE_EXCEEDED', message: 'the budget is too small for any model of the ensemble' }
  }
  switch (decision.code) {
    case 'ALL_MODELS_FAILED':
      return { code: decision.code, message: 'every model of the ensemble failed' }
    case 'DEADLINE_EXCEEDED':
      return { code: decision.code, message: 'no usable result by the deadline' }
    case 'NO_CONSENSUS':
      return { code: decision.code, message: 'the models did not reach a majority' }
  }
}

/** The members' annotations at the decision, with what the request's error and stats need from them. */
export interface MemberTally {
  readonly models: ModelAnnotation[]
  /** The cause every member's failure shares; null when they differ or one succeeded (undefined: no member). */
  readonly commonCause: string | null | undefined
  /** Members that were started: those not annotated `skipped` (an executor's refusal is not a start). */
  readonly started: number
}

/**
 * Every member's annotation as the run ends at `now` (`atDeadline`: cut by its deadline), each
 * recorded in its model's stats under the version its run went to (a canary's, cut or not:
 * `run` is the context its executors were started with). A member that never started was
 * held back: by adaptive selection (index ≥ `heldBackFrom`) or by a start delay, and no
 * version ran.
 */
export function annotateMembers(
  ens: EnsembleRuntime,
  outcomes: readonly (Outcome | undefined)[],
  startedAt: readonly number[],
  chosen: number | null,
  now: number,
  deadline: number,
  atDeadline: boolean,
  heldBackFrom: number,
  cancelled: boolean,
  run: InferContext,
): MemberTally {
  const models = new Array<ModelAnnotation>(ens.executors.length)
  let commonCause: string | null | undefined
  let started = 0
  for (let i = 0; i < models.length; i++) {
    const began = startedAt[i]!
    const o = outcomes[i]
    const meta = ens.models[i]!
    const served = memberVersion(meta, ens.executors[i])
    let a: ModelAnnotation
    if (o) {
      a = annotate(meta, served, o, chosen === i)
      const cause = o.status === 'ok' ? null : o.error.code
      commonCause = commonCause === undefined || commonCause === cause ? cause : null
    } else {
      commonCause = null
      if (began === NOT_STARTED) {
        const why = i >= heldBackFrom ? HELD_BACK : (ens.strategy.startDelaysMs?.[i] ?? 0) > 0 ? NOT_REACHED : NOT_LAUNCHED
        const error = cancelled ? why.cancelled : atDeadline ? why.deadline : why.decided
        a = { name: meta.name, version: served, status: 'skipped', latency_ms: 0, used: false, error }
      } else {
        // Cut at the deadline, it had until the deadline (decided within the timers' grain):
        // its run counts as that long, or latency-aware selection would see it as fitting.
        const until = atDeadline ? Math.max(now, deadline) : now
        const version = routedVersion(ens.executors[i], run) ?? served
        a = { name: meta.name, version, status: atDeadline ? 'timeout' : 'cancelled', latency_ms: roundMs(until - began), used: false }
      }
    }
    models[i] = a
    // Started: not skipped, whether by selection, a start delay, or the executor refusing it
    // (queue full, no time left, circuit open: it never ran, though launched). `specserve eval` counts the same.
    if (a.status !== 'skipped') started++
    // Another version's own counters only for a canary's run: a remote answer naming its version counts as the model's.
    const own = a.version === served || (o?.status === 'ok' && (o.outputs as BatchedOutputs)[RAN_VERSION] === undefined)
    const stats = own ? ens.stats[i]! : ens.stats[i]!.ofVersion(a.version)
    stats.record(a.status, a.latency_ms, a.used)
  }
  return { models, commonCause, started }
}
