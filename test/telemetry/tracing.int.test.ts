// Traces as an operator sees them in a backend: one span per predict under the caller's
// trace (REST traceparent header or gRPC metadata), one child per model with its status,
// and the trace context carried on to a remote model's HTTP request.
import * as grpc from '@grpc/grpc-js'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { startTelemetry, traceIdOf, type Telemetry } from '../../src/telemetry/index.ts'
import { SpanAttr } from '../../src/telemetry/run-trace.ts'
import { startHarness, type Harness } from '../api/grpc/harness.ts' // also registers the scripted kind
import { configFrom, samples } from '../helpers.ts'
import { fakeV2Server, SpanWatcher } from './trace-tools.ts'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const CALLER_SPAN = '00f067aa0ba902b7'
const traceparent = `00-${TRACE_ID}-${CALLER_SPAN}-01`

const exporter = new InMemorySpanExporter()
/** Resolves with the next span of that name to end (spans of a cancelled model end after the response). */
const watcher = new SpanWatcher(exporter)
let telemetry: Telemetry
let gateway: Gateway
let app: ReturnType<typeof buildServer>
let v2: Awaited<ReturnType<typeof fakeV2Server>>
let harness: Harness
const cancer = samples('cancer')
const wine = samples('wine')

const byName = (prefix: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name.startsWith(prefix))
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

beforeAll(async () => {
  v2 = await fakeV2Server({ name: 'input', shape: [-1, 30] })
  const config = configFrom(`
executors: { onnx_workers: 2 }
models:
  wine-logreg: { kind: onnx, path: ../models/wine_logreg.onnx }
  wine-tree: { kind: onnx, path: ../models/wine_tree.onnx }
  wine-knn: { kind: onnx, path: ../models/wine_knn.onnx }
  cancer-logreg: { kind: onnx, path: ../models/cancer_logreg.onnx }
  remote: { kind: oip, url: "${v2.url}", model: remote }
  fast: { kind: scripted, delay_ms: 1 }
  slow: { kind: scripted, delay_ms: 200 }
  broken: { kind: scripted, fail: boom }
ensembles:
  wine:
    strategy: { name: majority-vote, quorum: all }
    models: [wine-logreg, wine-tree, wine-knn]
    budget_ms: { default: 2000, max: 5000 }
  mixed:
    strategy: { name: majority-vote, quorum: all }
    models: [cancer-logreg, remote]
    budget_ms: { default: 2000, max: 5000 }
  race:
    strategy: deadline-fallback
    models: [fast, slow]
    budget_ms: { default: 2000, max: 5000 }
  broken:
    strategy: deadline-fallback
    models: [broken]
`)
  gateway = new Gateway(config)
  telemetry = startTelemetry(gateway, { ...config.telemetry, prometheus: false }, { spanProcessors: [watcher] })
  app = buildServer(config, { gateway, telemetry })
  await gateway.load()
  await app.ready()
  harness = await startHarness()
})

afterAll(async () => {
  await app?.close()
  await gateway?.close()
  await harness?.close()
  await telemetry?.shutdown()
  v2?.server.close()
})

beforeEach(() => exporter.reset())

describe('tracing', () => {
  it('gives an ensemble predict one span, a child per model, under the caller\'s traceparent', async () => {
    let recorded: string | null = null
    gateway.hooks.onResult = (result) => (recorded = traceIdOf(result))
    const res = await app.inject({
      method: 'POST',
      url: '/v1/ensembles/wine/predict',
      headers: { traceparent, 'content-type': 'application/json' },
      payload: { inputs: { input: [wine.rows[0]] } },
    })
    expect(res.statusCode).toBe(200)
    const [predict] = byName('predict wine')
    expect(predict).toBeDefined()
    // @fastify/otel's request span continues the caller's trace; the predict span is its child.
    const [request] = exporter.getFinishedSpans().filter((s) => s.name === 'request')
    expect(request!.spanContext().traceId).toBe(TRACE_ID)
    expect(parentOf(request!)).toBe(CALLER_SPAN)
    expect(predict!.spanContext().traceId).toBe(TRACE_ID)
    expect(parentOf(predict!)).toBe(request!.spanContext().spanId)
    expect(predict!.attributes[SpanAttr.ensemble]).toBe('wine')
    expect(predict!.attributes[SpanAttr.strategy]).toBe('majority-vote')
    expect(predict!.attributes[SpanAttr.budgetMs]).toBe(2000)
    expect(predict!.attributes[SpanAttr.outcome]).toBe('ok')
    expect(predict!.attributes[SpanAttr.reason]).toBe(res.json().decision.reason)
    // What serving records carry as trace_id.
    expect(recorded).toBe(TRACE_ID)
    delete gateway.hooks.onResult

    const models = byName('infer ')
    expect(models.map((s) => s.attributes[SpanAttr.model]).sort()).toEqual(['wine-knn', 'wine-logreg', 'wine-tree'])
    const annotations = res.json().models as { name: string; status: string; used: boolean }[]
    for (const span of models) {
      expect(parentOf(span)).toBe(predict!.spanContext().spanId)
      expect(span.spanContext().traceId).toBe(TRACE_ID)
      const a = annotations.find((m) => m.name === span.attributes[SpanAttr.model])!
      expect(span.attributes[SpanAttr.status]).toBe(a.status)
      expect(span.attributes[SpanAttr.used]).toBe(a.used)
      expect(span.attributes[SpanAttr.latencyMs]).toBeGreaterThan(0)
    }
  })

  it('gives a 404 and a 405 (and a 404 under /v2) a request span under the caller\'s traceparent, as any request', async () => {
    for (const [method, url, status] of [['GET', '/nope', 404], ['DELETE', '/v1/ensembles/wine/predict', 405], ['GET', '/v2/nope', 404]] as const) {
      const ended = watcher.nextEnd('request')
      const res = await app.inject({ method, url, headers: { traceparent } })
      expect(res.statusCode).toBe(status)
      const span = await ended
      expect(span.spanContext().traceId).toBe(TRACE_ID)
      expect(parentOf(span)).toBe(CALLER_SPAN)
      expect(span.attributes['http.response.status_code']).toBe(status)
    }
  })

  it('marks a model cut off by the decision as cancelled, and late once it does answer', async () => {
    const slowEnded = watcher.nextEnd('infer slow')
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/race/predict', payload: { inputs: { x: [[0.5, 0.5]] } } })
    expect(res.statusCode).toBe(200)
    expect(res.json().decision.chosen).toBe('fast')
    const [predict] = byName('predict race')
    // No traceparent: a new trace starts at the request span.
    const [request] = exporter.getFinishedSpans().filter((s) => s.name === 'request')
    expect(parentOf(request!)).toBeUndefined()
    expect(predict!.attributes[SpanAttr.chosen]).toBe('fast')
    const fast = byName('infer fast')[0]!
    expect(fast.attributes[SpanAttr.used]).toBe(true)
    expect(fast.attributes[SpanAttr.status]).toBe('ok')
    // The scripted slow model ignores the abort: its span ends when it answers, after the predict.
    const slow = await slowEnded
    expect(slow.attributes[SpanAttr.status]).toBe('cancelled')
    expect(slow.attributes[SpanAttr.used]).toBe(false)
    expect(slow.attributes[SpanAttr.late]).toBe(true)
    expect(parentOf(slow)).toBe(predict!.spanContext().spanId)
  })

  it('records a failed predict as an error span with its code', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/broken/predict', payload: { inputs: { x: [[0.5, 0.5]] } } })
    expect(res.statusCode).toBe(502)
    const [predict] = byName('predict broken')
    expect(predict!.attributes[SpanAttr.outcome]).toBe('ALL_MODELS_FAILED')
    expect(predict!.status.code).toBe(2) // SpanStatusCode.ERROR
    const [model] = byName('infer broken')
    expect(model!.attributes[SpanAttr.status]).toBe('error')
    expect(model!.attributes[SpanAttr.errorCode]).toBe('MODEL_FAILED')
  })

  it('sends the model span\'s trace context to a remote model', async () => {
    v2.seen.length = 0
    const res = await app.inject({
      method: 'POST',
      url: '/v1/ensembles/mixed/predict',
      headers: { traceparent },
      payload: { inputs: { input: [cancer.rows[0]] } },
    })
    expect(res.statusCode).toBeLessThan(500)
    expect(v2.seen).toHaveLength(1)
    const [, traceId, spanId] = v2.seen[0]!.split('-')
    expect(traceId).toBe(TRACE_ID)
    const remote = byName('infer remote')[0]!
    // The upstream's parent is the model's own span, not the predict span.
    expect(spanId).toBe(remote.spanContext().spanId)
  })

  it('continues a trace from gRPC metadata', async () => {
    const md = new grpc.Metadata()
    md.set('traceparent', traceparent)
    const client = harness.gatewayClient
    await new Promise<void>((resolve, reject) => {
      client.Predict!(
        { ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0], shape: [1, 30] } } },
        md,
        {},
        (err: Error | null) => (err ? reject(err) : resolve()),
      )
    })
    const [predict] = byName('predict cancer')
    expect(predict!.spanContext().traceId).toBe(TRACE_ID)
    expect(parentOf(predict!)).toBe(CALLER_SPAN)
    expect(byName('infer cancer-').every((s) => parentOf(s) === predict!.spanContext().spanId)).toBe(true)
  })
})
