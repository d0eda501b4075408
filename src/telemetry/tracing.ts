// Trace context plumbing shared by the starter, the frontends and remote executors.
// `activeTracer` is null unless tracing was started: every hot-path caller checks it
// first, so with tracing off a predict pays one property read, nothing else.
import { context, propagation, trace, type Context, type TextMapGetter, type Tracer } from '@opentelemetry/api'

export const TRACER_NAME = 'specserve'

const state: { tracer: Tracer | null } = { tracer: null }

/** The tracer predicts report to, or null when tracing is off. */
export const activeTracer = (): Tracer | null => state.tracer

/** Called by startTelemetry/shutdown; tests may call it with a tracer of their own provider. */
export function setTracer(tracer: Tracer | null): void {
  state.tracer = tracer
}

/**
 * W3C trace context (`traceparent`, `tracestate`, baggage) of the active span, for a
 * remote executor's outgoing HTTP request or gRPC call. Empty when tracing is off.
 * Executors call it inside `infer()`: the starter runs each infer in the context of that
 * model's span.
 */
export function traceHeaders(): Readonly<Record<string, string>> {
  if (!state.tracer) return NO_HEADERS
  const headers: Record<string, string> = {}
  propagation.inject(context.active(), headers)
  return headers
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/** Something with gRPC Metadata's `get(key)` (values are strings or Buffers). */
export interface MetadataLike {
  get(key: string): (string | Buffer)[]
}

const metadataGetter: TextMapGetter<MetadataLike> = {
  get(carrier, key) {
    const values = carrier.get(key)
    if (values.length === 0) return undefined
    return values.map((v) => (typeof v === 'string' ? v : v.toString('utf8')))
  },
  keys() {
    return [] // the W3C propagators ask for their keys by name
  },
}

/**
 * Runs `fn` in the trace context carried by a gRPC call's incoming metadata, so the predict
 * span it starts has the caller's span as parent. Calls `fn` directly when tracing is off,
 * without reading `call.metadata` (the fast unary path builds it only when read).
 */
export function withIncomingMetadata<T>(call: { readonly metadata: MetadataLike }, fn: () => T): T {
  if (!state.tracer) return fn()
  const parent: Context = propagation.extract(context.active(), call.metadata, metadataGetter)
  return context.with(parent, fn)
}

const traceIds = new WeakMap<object, string>()

/** Links a predict result to its (sampled) trace; set by the starter when tracing is on. */
export function rememberTraceId(result: object, traceId: string): void {
  traceIds.set(result, traceId)
}

/**
 * `copy`, a copy of the predict result `of` (a shadowed predict's, with its shadows' answers),
 * linked to the same trace, so its serving record and late ones carry the trace id too.
 */
export function withTraceOf<T extends object>(of: object, copy: T): T {
  const traceId = traceIds.get(of)
  if (traceId !== undefined) traceIds.set(copy, traceId)
  return copy
}

/** The trace id of a predict (serving records carry it), or null when it was not traced. */
export function traceIdOf(result: object): string | null {
  return traceIds.get(result) ?? null
}

/** The trace id of the active span (for logs), or null. */
export function activeTraceId(): string | null {
  if (!state.tracer) return null
  const span = trace.getSpan(context.active())
  return span ? span.spanContext().traceId : null
}
