// Spans an operator finds in a backend besides the predict's own: none for probes and scrapes
// (query string or not), and a remote shadow member's call as a span of its own that its
// upstream request names; a model's run is a CLIENT span only when it leaves the process.
import { SpanKind } from '@opentelemetry/api'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import '../starter/scripted.ts'
import { SpanAttr } from '../../src/telemetry/run-trace.ts'
import { configFrom } from '../helpers.ts'
import { serveLoaded, type ServedApp } from '../served-app.ts'
import { fakeV2Server, SpanWatcher } from './trace-tools.ts'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const traceparent = `00-${TRACE_ID}-00f067aa0ba902b7-01`

const exporter = new InMemorySpanExporter()
const watcher = new SpanWatcher(exporter)

let app: ServedApp['app']
let close: ServedApp['close'] | undefined
let v2: Awaited<ReturnType<typeof fakeV2Server>>

beforeAll(async () => {
  v2 = await fakeV2Server({ name: 'x', shape: [-1, 2] })
  const config = configFrom(`
models:
  m: { kind: scripted, delay_ms: 1, label: 1 }
  remote: { kind: oip, url: "${v2.url}", model: remote }
ensembles:
  e: { strategy: deadline-fallback, models: [m] }
  shadowed: { strategy: deadline-fallback, models: [m], shadow: { models: [remote] } }
  direct: { strategy: deadline-fallback, models: [remote] }
`)
  ;({ app, close } = await serveLoaded(config, { prometheus: true }, { spanProcessors: [watcher] }))
})

afterAll(async () => {
  await close?.()
  v2?.server.close()
})

beforeEach(() => {
  exporter.reset()
  watcher.ended.length = 0
})

describe('spans', () => {
  it('traces no probe or scrape, with or without a query string', async () => {
    for (const url of ['/healthz?probe=1', '/readyz?verbose', '/metrics?x=1', '/v2/health/live?a', '/v2/health/ready?b']) {
      expect((await app.inject(url)).statusCode).toBeLessThan(500)
    }
    // A traced request after them: once its span has ended, theirs would have too.
    const ended = watcher.nextEnd('request')
    await app.inject('/v1/ensembles')
    await ended
    expect(watcher.ended.map((s) => s.attributes['url.path'] ?? s.name)).toEqual(['/v1/ensembles'])
  })

  it('records url.path as the path alone, without the query string', async () => {
    const ended = watcher.nextEnd('request')
    await app.inject('/v1/ensembles?token=secret&x=1')
    const span = await ended
    expect(span.attributes['url.path']).toBe('/v1/ensembles')
    expect(JSON.stringify(span.attributes)).not.toContain('secret')
  })

  it('gives a remote shadow member\'s call a span of its own, in the predict\'s trace, that its upstream request names', async () => {
    v2.seen.length = 0
    const shadowEnded = watcher.nextEnd('shadow remote')
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/shadowed/predict', headers: { traceparent }, payload: { inputs: { x: [[1, 2]] } } })
    expect(res.statusCode).toBe(200)
    const shadow = await shadowEnded
    expect(shadow.spanContext().traceId).toBe(TRACE_ID)
    expect(shadow.attributes[SpanAttr.model]).toBe('remote')
    // Its metadata names no version; the answer does.
    expect(shadow.attributes[SpanAttr.version]).toBe('2')
    expect(v2.seen).toHaveLength(1)
    const [, traceId, parentId] = v2.seen[0]!.split('-')
    expect(traceId).toBe(TRACE_ID)
    expect(parentId).toBe(shadow.spanContext().spanId)
    // A call to another process is a CLIENT span, as OpenTelemetry names an outgoing call.
    expect(shadow.kind).toBe(SpanKind.CLIENT)
  })

  it('makes an in-process member\'s run an INTERNAL span: a CLIENT span says a call left the process', async () => {
    const ended = watcher.nextEnd('infer m')
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', headers: { traceparent }, payload: { inputs: { x: [[1, 2]] } } })
    expect(res.statusCode).toBe(200)
    expect((await ended).kind).toBe(SpanKind.INTERNAL)
  })

  it('makes a remote member\'s run a CLIENT span', async () => {
    const ended = watcher.nextEnd('infer remote')
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/direct/predict', headers: { traceparent }, payload: { inputs: { x: [[1, 2]] } } })
    expect(res.statusCode).toBe(200)
    expect((await ended).kind).toBe(SpanKind.CLIENT)
  })
})
