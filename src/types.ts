// The internal contract every layer speaks. Frontends translate wire formats to a
// PredictRequest and a PredictResult back; nothing here knows about HTTP or gRPC.
// Tensors and their codecs live in ./tensor/.
import type { TensorMap, TensorSpec } from './tensor/index.ts'

export interface ModelMetadata {
  readonly name: string
  readonly version: string
  readonly kind: string
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
}

export interface PredictRequest {
  readonly id: string
  readonly ensemble: string
  readonly inputs: TensorMap
  /** Budget asked for explicitly (body field or header). Over the ensemble cap is an error. */
  readonly budgetMs?: number | undefined
  /** Budget implied by the transport (a gRPC deadline): clamped to the cap, never an error. */
  readonly transportBudgetMs?: number | undefined
  /** A limit the budget must fit in, not a budget: a stream's deadline caps each message's budget (its own, else the ensemble default). */
  readonly deadlineCapMs?: number | undefined
  /** Fires when the client goes away: the whole request is cancelled. */
  readonly signal?: AbortSignal | undefined
}

export const ModelStatus = {
  ok: 'ok',
  error: 'error',
  timeout: 'timeout',
  cancelled: 'cancelled',
  skipped: 'skipped',
} as const
export type ModelStatus = (typeof ModelStatus)[keyof typeof ModelStatus]

export interface ErrorInfo {
  readonly code: string
  /** Absent in annotations shown to a caller without the `debug` scope (src/security/redact.ts). */
  readonly message?: string
}

/**
 * What a collector is shown as each model finishes. `index` is the model's position in
 * the ensemble's `models` list, which is also its preference and tie-break order.
 */
export type Outcome =
  | { readonly status: 'ok'; readonly index: number; readonly outputs: TensorMap; readonly latencyMs: number }
  | { readonly status: 'error'; readonly index: number; readonly error: ErrorInfo; readonly latencyMs: number; readonly version?: string | undefined }
  | { readonly status: 'skipped'; readonly index: number; readonly error: ErrorInfo; readonly latencyMs: number; readonly version?: string | undefined }

export type Votes = Readonly<Record<string, number>>

/** A collector's verdict: an answer taken from one model (or aggregated), or a failure. */
export type Decision =
  | {
      readonly kind: 'answer'
      /** Index of the model whose outputs are returned; null when outputs are aggregated or abstained. */
      readonly chosen: number | null
      readonly reason: string
      readonly outputs: TensorMap | null
      readonly votes: Votes | null
    }
  | {
      readonly kind: 'fail'
      readonly code: 'ALL_MODELS_FAILED' | 'DEADLINE_EXCEEDED' | 'NO_CONSENSUS'
      readonly reason: string
      readonly votes: Votes | null
    }

export interface ModelAnnotation {
  readonly name: string
  readonly version: string
  readonly status: ModelStatus
  readonly latency_ms: number
  readonly used: boolean
  /** Rows of the batched run the model answered in (dynamic batching); absent when it ran alone. */
  readonly batch?: number
  readonly error?: ErrorInfo
}

export interface DecisionInfo {
  readonly chosen: string | null
  readonly reason: string
  readonly votes: Votes | null
}

/** A shadow model's answer on one predict, as the serving record carries it. */
export interface ShadowAnswer {
  readonly name: string
  readonly version: string
  readonly status: 'ok' | 'error'
  readonly latency_ms: number
  /** Whether its answer agrees with the one given (same label, or a value within 1%); null when there was nothing to compare. */
  readonly agrees: boolean | null
  readonly outputs?: TensorMap
  readonly error?: ErrorInfo
}

/** Everything a frontend needs to answer, and everything output/ needs to record. */
export interface PredictResult {
  readonly id: string
  readonly ensemble: string
  readonly strategy: string
  readonly outputs: TensorMap | null
  readonly decision: DecisionInfo
  readonly budget_ms: number
  readonly elapsed_ms: number
  readonly models: readonly ModelAnnotation[]
  /** Set when the request failed as a whole (502/504/422): the frontends map it to a status. */
  readonly error: ErrorInfo | null
  /** Shadow members' answers (serving records only: a predict is answered before its shadows run). */
  readonly shadows?: readonly ShadowAnswer[]
}

/** Metric attributes: label names and values. */
export type MetricAttributes = Readonly<Record<string, string>>

/**
 * Where a component reports its metrics when they are collected (telemetry implements it;
 * points for the same name from several components join one metric).
 */
export interface MetricsSink {
  gauge(name: string, help: string, points: readonly (readonly [MetricAttributes, number])[], unit?: string): void
  /** Whole counts; with a `unit` (seconds, say), fractional values (a double over OTLP). */
  counter(name: string, help: string, points: readonly (readonly [MetricAttributes, number])[], unit?: string): void
}

/** A part attached to the gateway (an output sink, stream mode): detail for /readyz, metrics for /metrics. */
export interface Component {
  status(): unknown
  collect?(out: MetricsSink): void
}

/** Where a strategy's or an executor kind's parse() reports what it finds (the config loader adds paths and lines). */
export interface OptionContext {
  /** An error: the config is refused. `field` is a dotted path below the options. */
  problem(field: string, message: string): void
  /** Accepted, but worth saying (a deprecated key). */
  warn(field: string, message: string): void
}

/** pino's calling convention (fastify's app.log fits), so every part logs where the server does. */
export interface Logger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} }
