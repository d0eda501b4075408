// The spans of one predict: a parent span for the request and a child per executor call.
// Created only when tracing is on (the starter holds `RunTrace | undefined`). A child span
// ends when its executor settles, so a cancelled inference that still ran shows its real
// duration; at the decision it is marked with the model's annotation (status, error, latency).
import { context, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api'
import type { ModelConfig } from '../config/load.ts'
import type { EnsembleRuntime } from '../starter/ensemble.ts'
import type { Outcome, PredictRequest, PredictResult } from '../types.ts'
import { rememberTraceId } from './tracing.ts'
import { getExecutorKind } from '../executors/registry.ts'
import { versionOf } from '../executors/types.ts'

export const SpanAttr = {
  ensemble: 'specserve.ensemble',
  strategy: 'specserve.strategy',
  requestId: 'specserve.request_id',
  budgetMs: 'specserve.budget_ms',
  elapsedMs: 'specserve.elapsed_ms',
  outcome: 'specserve.outcome',
  chosen: 'specserve.decision.chosen',
  reason: 'specserve.decision.reason',
  atDeadline: 'specserve.decision.at_deadline',
  model: 'specserve.model',
  version: 'specserve.model.version',
  kind: 'specserve.model.kind',
  status: 'specserve.model.status',
  latencyMs: 'specserve.model.latency_ms',
  used: 'specserve.model.used',
  late: 'specserve.model.late',
  errorCode: 'specserve.error.code',
} as const

export class RunTrace {
  readonly span: Span
  private readonly tracer: Tracer
  private readonly ctx: Context
  private readonly ens: EnsembleRuntime
  private readonly children: (Span | undefined)[]
  /** performance.now() when each model settled before the decision. */
  private readonly settledAt: (number | undefined)[]

  constructor(tracer: Tracer, ens: EnsembleRuntime, req: PredictRequest, budgetMs: number) {
    this.tracer = tracer
    this.ens = ens
    this.children = new Array<Span | undefined>(ens.executors.length)
    this.settledAt = new Array<number | undefined>(ens.executors.length)
    // The parent is whatever is active: @fastify/otel's request span (itself a child of an
    // incoming traceparent), or the context a gRPC handler extracted from metadata.
    const parent = context.active()
    this.span = tracer.startSpan(
      `predict ${ens.name}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: { [SpanAttr.ensemble]: ens.name, [SpanAttr.strategy]: ens.strategyName, [SpanAttr.requestId]: req.id, [SpanAttr.budgetMs]: budgetMs },
      },
      parent,
    )
    this.ctx = trace.setSpan(parent, this.span)
  }

  /** Starts model `index`'s span and calls `infer` inside it, so `traceHeaders()` there names it. */
  launch<T>(index: number, infer: () => T): T {
    const meta = this.ens.models[index]!
    const span = this.tracer.startSpan(
      `infer ${meta.name}`,
      { kind: spanKindOf(meta.kind), attributes: { [SpanAttr.model]: meta.name, [SpanAttr.version]: meta.version, [SpanAttr.kind]: meta.kind } },
      this.ctx,
    )
    this.children[index] = span
    return context.with(trace.setSpan(this.ctx, span), infer)
  }

  /**
   * The executor settled. Before the decision its span stays open until then (whether it
   * was used is known only at the decision) and ends at the time it settled; after the
   * decision (a model the decision cut: cancelled or timed out) it ends now. Its status,
   * error and latency are its annotation's, set at the decision: the abort that cut it is no
   * failure of its own, and its time is the time it had, as the response says.
   */
  settled(outcome: Outcome, late: boolean): void {
    const span = this.children[outcome.index]
    if (!span) return
    if (!late) {
      this.settledAt[outcome.index] = performance.now()
      return
    }
    // Say it did finish, and with which version when the answer says.
    if (outcome.status === 'ok') {
      span.setAttribute(SpanAttr.late, true)
      const version = versionOf(outcome.outputs)
      if (version !== undefined) span.setAttribute(SpanAttr.version, version)
    }
    this.children[outcome.index] = undefined
    span.end()
  }

  /** The decision: annotate every model span and the predict span; end all that have settled. */
  finish(result: PredictResult, atDeadline: boolean): void {
    for (let i = 0; i < result.models.length; i++) {
      const span = this.children[i]
      if (!span) continue
      const a = result.models[i]!
      span.setAttribute(SpanAttr.status, a.status)
      span.setAttribute(SpanAttr.used, a.used)
      span.setAttribute(SpanAttr.latencyMs, a.latency_ms)
      if (a.error) {
        span.setAttribute(SpanAttr.errorCode, a.error.code)
        if (a.status === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: a.error.message })
      }
      // The version that ran: a canary's, when the registry's rollout sent the run to it.
      span.setAttribute(SpanAttr.version, a.version)
      const at = this.settledAt[i]
      if (at === undefined) continue // still running: ends when it settles
      this.children[i] = undefined
      span.end(at)
    }
    const chosen = result.decision.chosen
    const span = this.span
    span.setAttribute(SpanAttr.outcome, result.error ? result.error.code : 'ok')
    span.setAttribute(SpanAttr.reason, result.decision.reason)
    span.setAttribute(SpanAttr.elapsedMs, result.elapsed_ms)
    span.setAttribute(SpanAttr.atDeadline, atDeadline)
    if (chosen !== null) span.setAttribute(SpanAttr.chosen, chosen)
    if (result.error) span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.message })
    // A sampled-out trace is nowhere to be found: records keep trace_id null then.
    if (span.isRecording()) rememberTraceId(result, span.spanContext().traceId)
    span.end()
  }
}

/**
 * A shadow member's call, after the answer: a span of its own (`shadow <model>`, in the
 * predict's trace), active while it runs, so a remote shadow's upstream call carries a span
 * that the gateway records and that lasts as long as the call. Its version is the one
 * `answered` reads from the answer.
 */
export function traceShadow<T>(tracer: Tracer, model: ModelConfig, version: string, infer: () => Promise<T>, answered: (value: T) => string): Promise<T> {
  const parent = context.active()
  const span = tracer.startSpan(
    `shadow ${model.name}`,
    { kind: spanKindOf(model.kind), attributes: { [SpanAttr.model]: model.name, [SpanAttr.version]: version, [SpanAttr.kind]: model.kind } },
    parent,
  )
  return context.with(trace.setSpan(parent, span), infer).then(
    (value) => {
      // The version that answered: a remote model's answer can name another one.
      const ran = answered(value)
      if (ran !== version) span.setAttribute(SpanAttr.version, ran)
      span.end()
      return value
    },
    (err: unknown) => {
      const e = err as { code?: string; message?: string } | undefined
      if (e?.code) span.setAttribute(SpanAttr.errorCode, e.code)
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(e?.message ?? err) })
      span.end()
      throw err
    },
  )
}

/** A run that calls another process is a CLIENT span (OpenTelemetry's kind for an outgoing call); one in this process is INTERNAL. */
const spanKindOf = (kind: string): SpanKind => (getExecutorKind(kind)?.remote === true ? SpanKind.CLIENT : SpanKind.INTERNAL)
