// Spans an operator finds in a backend besides the predict's own: none for probes and scrapes
// (query string or not), OIP handler spans with a readable name, and a remote shadow member's
// call as a span of its own that its upstream request names.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import '../starter/scripted.ts'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { startTelemetry, type Telemetry } from '../../src/telemetry/index.ts'
import { SpanAttr } from '../../src/telemetry/run-trace.ts'
import { configFrom } from '../helpers.ts'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const traceparent = `00-${TRACE_ID}-00f067aa0ba902b7-01`

/** A V2 model server that remembers the traceparent of each infer. */
async function fakeV2Server(): Promise<{ server: Server; url: string; seen: (string | undefined)[] }> {
  const seen: (string | undefined)[] = []
  const server = createServer((req, res) => {
    const send = (body: object): void => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    req.resume()
    req.on('end', () => {
      if (req.method === 'GET') {
        return send({ name: 'remote', platform: 'test', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }] })
      }
      seen.push(req.headers.traceparent as string | undefined)
      send({ model_name: 'remote', outputs: [{ name: 'label', datatype: 'INT64', shape: [1], data: [1] }] })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen }
}

const exporter = new InMemorySpanExporter()
/** Every span ended since the test began, as it ends (the exporter may get it later). */
const endedSpans: ReadableSpan[] = []
const waiters: { name: string; resolve: (span: ReadableSpan) => void }[] = []
/** Resolves with the next span of that name to end. */
const nextEnd = (name: string): Promise<ReadableSpan> => new Promise((resolve) => waiters.push({ name, resolve }))
class Notifier extends SimpleSpanProcessor {
  override onEnd(span: ReadableSpan): void {
    super.onEnd(span)
    endedSpans.push(span)
    for (const w of waiters.splice(0)) {
      if (w.name === span.name) w.resolve(span)
      else waiters.push(w)
    }
  }
}

let telemetry: Telemetry
let gateway: Gateway
let app: ReturnType<typeof buildServer>
let v2: Awaited<ReturnType<typeof fakeV2Server>>

beforeAll(async () => {
  v2 = await fakeV2Server()
  const config = configFrom(`
models:
  m: { kind: scripted, delay_ms: 1, label: 1 }
  remote: { kind: oip, url: "${v2.url}", model: remote }
ensembles:
  e: { strategy: deadline-fallback, models: [m] }
  shadowed: { strategy: deadline-fallback, models: [m], shadow: { models: [remote] } }
`)
  gateway = new Gateway(config)
  telemetry = startTelemetry(gateway, { ...config.telemetry, prometheus: true }, { spanProcessors: [new Notifier(exporter)] })
  app = buildServer(config, { gateway, telemetry })
  await gateway.load()
  await app.ready()
})

afterAll(async () => {
  await app?.close()
  await gateway?.close()
  await telemetry?.shutdown()
  v2?.server.close()
})

beforeEach(() => {
  exporter.reset()
  endedSpans.length = 0
})

describe('spans', () => {
  it('traces no probe or scrape, with or without a query string', async () => {
    for (const url of ['/healthz?probe=1', '/readyz?verbose', '/metrics?x=1', '/v2/health/live?a', '/v2/health/ready?b']) {
      expect((await app.inject(url)).statusCode).toBeLessThan(500)
    }
    // A traced request after them: once its span has ended, theirs would have too.
    const ended = nextEnd('request')
    await app.inject('/v1/ensembles')
    await ended
    expect(endedSpans.map((s) => s.attributes['url.path'] ?? s.name)).toEqual(['/v1/ensembles'])
  })

  it('names the OIP handler span after the routes, not their source code', async () => {
    const ended = nextEnd('request')
    const res = await app.inject({ method: 'POST', url: '/v2/models/e/infer', headers: { traceparent }, payload: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] } })
    expect(res.statusCode).toBe(200)
    await ended
    const names = endedSpans.map((s) => s.name)
    expect(names).toContain('handler - oipRoutes')
    expect(names.every((name) => name.length < 40)).toBe(true)
  })

  it('gives a remote shadow member\'s call a span of its own, in the predict\'s trace, that its upstream request names', async () => {
    v2.seen.length = 0
    const shadowEnded = nextEnd('shadow remote')
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/shadowed/predict', headers: { traceparent }, payload: { inputs: { x: [[1, 2]] } } })
    expect(res.statusCode).toBe(200)
    const shadow = await shadowEnded
    expect(shadow.spanContext().traceId).toBe(TRACE_ID)
    expect(shadow.attributes[SpanAttr.model]).toBe('remote')
    expect(v2.seen).toHaveLength(1)
    const [, traceId, parentId] = v2.seen[0]!.split('-')
    expect(traceId).toBe(TRACE_ID)
    expect(parentId).toBe(shadow.spanContext().spanId)
  })
})
