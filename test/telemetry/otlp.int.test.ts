// The OTLP path end to end, with real in-process OTLP receivers (HTTP and gRPC): an endpoint
// turns tracing on, spans and the gateway's metrics arrive at /v1/traces and /v1/metrics in the
// protocol the OTEL_EXPORTER_OTLP_*PROTOCOL variables ask for, shutdown flushes what is
// pending, and a collector that refuses the exports is reported in the gateway's log.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { Writable } from 'node:stream'
import * as grpc from '@grpc/grpc-js'
import pino from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import '../starter/scripted.ts'
import { Gateway } from '../../src/gateway.ts'
import { buildServer } from '../../src/api/rest/server.ts'
import { startTelemetry, type TelemetryOptions } from '../../src/telemetry/index.ts'
import { activeTracer } from '../../src/telemetry/tracing.ts'
import { inputFailure } from '../../src/errors.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import { configFrom } from '../helpers.ts'
import { readPayload } from './otlp-payload.ts'

interface Received {
  readonly path: string
  readonly contentType: string
  readonly body: Buffer
}

const received: Received[] = []
/** The status the HTTP receiver answers. */
let status = 200
let http: Server
let httpEndpoint: string
let grpcServer: grpc.Server
let grpcEndpoint: string

beforeAll(async () => {
  http = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body: Buffer.concat(chunks) })
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? '' : 'missing API key')
    })
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  httpEndpoint = `http://127.0.0.1:${(http.address() as { port: number }).port}`

  // A collector's two OTLP/gRPC services, taking the requests as bytes (an empty answer is an
  // empty Export*ServiceResponse).
  grpcServer = new grpc.Server()
  const bytes = (b: Buffer): Buffer => b
  for (const path of ['/opentelemetry.proto.collector.trace.v1.TraceService/Export', '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export']) {
    const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
      received.push({ path, contentType: 'application/grpc', body: call.request })
      callback(null, Buffer.alloc(0))
    }
    grpcServer.register(path, handler, bytes, bytes, 'unary')
  }
  const port = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  )
  grpcEndpoint = `http://127.0.0.1:${port}`
})

afterAll(async () => {
  http?.close()
  grpcServer?.forceShutdown()
})

afterEach(() => {
  vi.unstubAllEnvs()
  received.length = 0
  status = 200
})

const configWith = (telemetry: string) =>
  configFrom(`
telemetry: ${telemetry}
models: { m: { kind: scripted, delay_ms: 1 } }
ensembles: { e: { strategy: deadline-fallback, models: [m] } }
`)

/** One predict through a gateway with telemetry on, then its shutdown (which flushes both signals). */
async function predictOnce(telemetry: string, options: TelemetryOptions = {}): Promise<void> {
  const config = configWith(telemetry)
  const gateway = new Gateway(config)
  const started = startTelemetry(gateway, config.telemetry, options)
  try {
    await gateway.load()
    expect(started.tracing).toBe(true)
    expect(activeTracer()).not.toBeNull()
    const spec = gateway.ensemble('e').inputs[0]!
    const result = await gateway.predict({ id: 'otlp-1', ensemble: 'e', inputs: { x: tensorFromJson([[0.5, 0.5]], spec, inputFailure) } })
    expect(result.error).toBeNull()
  } finally {
    await gateway.close()
    await started.shutdown()
  }
  expect(activeTracer()).toBeNull()
}

/** What arrived at the receivers for the signal: content types, service names, span or metric names. */
function arrived(signal: 'traces' | 'metrics', path = `/v1/${signal}`) {
  const requests = received.filter((r) => r.path === path)
  const payloads = requests.map((r) => readPayload(signal, r.contentType, r.body))
  return {
    contentTypes: [...new Set(requests.map((r) => r.contentType))],
    services: [...new Set(payloads.flatMap((p) => p.services))],
    names: payloads.flatMap((p) => p.names),
    metrics: payloads.flatMap((p) => p.metrics),
  }
}

/** The event loop's time counter: seconds, fractional, so each point must go out as a double (an int would cut the fraction). */
function loopTimeAsDoubles(metrics: ReturnType<typeof arrived>['metrics']): void {
  const time = metrics.filter((m) => m.name === 'nodejs.eventloop.time')
  expect(time.length).toBeGreaterThan(0)
  for (const m of time) {
    expect(m.unit).toBe('s')
    expect(m.sum?.dataPoints).toHaveLength(2)
    for (const point of m.sum!.dataPoints!) {
      expect(point.asDouble).toBeGreaterThanOrEqual(0)
      expect(point.asInt).toBeUndefined()
    }
    // The loop has been busy (the idle time of a short test process may be 0).
    expect(Math.max(...m.sum!.dataPoints!.map((p) => p.asDouble ?? 0))).toBeGreaterThan(0)
  }
}

describe('OTLP export', () => {
  it('by default, over HTTP as protobuf (the spec\'s default): the predict\'s spans and the gateway\'s metrics reach the YAML endpoint, flushed at shutdown', async () => {
    await predictOnce(`{ otlp_endpoint: "${httpEndpoint}/", prometheus: false, service_name: otlp-test }`)
    const traces = arrived('traces')
    expect(traces.contentTypes).toEqual(['application/x-protobuf'])
    expect(traces.names).toEqual(expect.arrayContaining(['predict e', 'infer m']))
    expect(traces.services).toEqual(['otlp-test'])
    const metrics = arrived('metrics')
    expect(metrics.contentTypes).toEqual(['application/x-protobuf'])
    expect(metrics.names).toEqual(expect.arrayContaining(['specserve_predict_requests', 'specserve_model_duration_seconds']))
    expect(metrics.services).toEqual(['otlp-test'])
    loopTimeAsDoubles(metrics.metrics)
  })

  it('OTEL_EXPORTER_OTLP_PROTOCOL=http/json: both signals as JSON', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json')
    await predictOnce(`{ otlp_endpoint: "${httpEndpoint}", prometheus: false }`)
    expect(arrived('traces').contentTypes).toEqual(['application/json'])
    expect(arrived('traces').names).toContain('predict e')
    expect(arrived('metrics').contentTypes).toEqual(['application/json'])
    expect(arrived('metrics').names).toContain('specserve_predict_requests')
    loopTimeAsDoubles(arrived('metrics').metrics)
  })

  it('a signal\'s own variable wins over the general one, with the endpoint from OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', httpEndpoint)
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json')
    vi.stubEnv('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'HTTP/Protobuf')
    await predictOnce('{ prometheus: false }')
    expect(arrived('traces').contentTypes).toEqual(['application/json'])
    expect(arrived('metrics').contentTypes).toEqual(['application/x-protobuf'])
    expect(arrived('metrics').names).toContain('specserve_predict_requests')
  })

  it('the endpoint variables win over the YAML endpoint (the deploy\'s last word), each signal on its own', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', `${httpEndpoint}/env`)
    await predictOnce(`{ otlp_endpoint: "${httpEndpoint}/yaml", prometheus: false }`)
    expect(arrived('traces', '/env/v1/traces').names).toContain('predict e')
    expect(arrived('metrics', '/env/v1/metrics').names).toContain('specserve_predict_requests')
    expect(received.filter((r) => r.path.startsWith('/yaml'))).toEqual([])
    received.length = 0
    // Only the traces' own variable: metrics go to the YAML endpoint.
    vi.unstubAllEnvs()
    vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', `${httpEndpoint}/env-traces`)
    await predictOnce(`{ otlp_endpoint: "${httpEndpoint}/yaml", prometheus: false }`)
    expect(arrived('traces', '/env-traces').names).toContain('predict e')
    expect(arrived('metrics', '/yaml/v1/metrics').names).toContain('specserve_predict_requests')
    expect(received.filter((r) => r.path.startsWith('/yaml/v1/traces'))).toEqual([])
  })

  it('grpc: both signals to the collector\'s gRPC services, at the YAML endpoint as it is', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc')
    await predictOnce(`{ otlp_endpoint: "${grpcEndpoint}", prometheus: false, service_name: otlp-grpc }`)
    const traces = arrived('traces', '/opentelemetry.proto.collector.trace.v1.TraceService/Export')
    expect(traces.names).toEqual(expect.arrayContaining(['predict e', 'infer m']))
    expect(traces.services).toEqual(['otlp-grpc'])
    expect(arrived('metrics', '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export').names).toContain('specserve_predict_requests')
    expect(received.filter((r) => r.path.startsWith('/v1/'))).toEqual([])
  })

  it('a value that is not a protocol is reported and ignored: the general variable applies', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json')
    vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'protobuf')
    const warnings: string[] = []
    await predictOnce(`{ otlp_endpoint: "${httpEndpoint}", prometheus: false }`, { warn: (message) => warnings.push(message) })
    expect(warnings).toEqual(['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="protobuf" is not an OTLP protocol (http/protobuf, http/json, grpc): ignored'])
    expect(arrived('traces').contentTypes).toEqual(['application/json'])
  })

  it('a bad OTEL_EXPORTER_OTLP_PROTOCOL, read for both signals, is reported once', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc/protobuf')
    const warnings: string[] = []
    await predictOnce(`{ otlp_endpoint: "${httpEndpoint}", prometheus: false }`, { warn: (message) => warnings.push(message) })
    expect(warnings).toEqual(['OTEL_EXPORTER_OTLP_PROTOCOL="grpc/protobuf" is not an OTLP protocol (http/protobuf, http/json, grpc): ignored'])
    expect(arrived('traces').contentTypes).toEqual(['application/x-protobuf'])
    expect(arrived('metrics').contentTypes).toEqual(['application/x-protobuf'])
  })
})

describe('a collector refusing the exports', () => {
  it('is reported in the gateway\'s log, once for many failed exports', async () => {
    status = 401
    // The export's timeout is the interval: long enough that a busy box still gets the 401, not a timeout.
    vi.stubEnv('OTEL_METRIC_EXPORT_INTERVAL', '400')
    const lines: { level: number; msg: string }[] = []
    let logged!: () => void
    const refused = new Promise<void>((resolve) => (logged = resolve))
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        const line = JSON.parse(chunk.toString('utf8')) as (typeof lines)[number]
        lines.push(line)
        if (line.msg.includes('Unauthorized')) logged()
        done()
      },
    })
    const config = configWith(`{ otlp_endpoint: "${httpEndpoint}", prometheus: false }`)
    const gateway = new Gateway(config)
    const telemetry = startTelemetry(gateway, config.telemetry, { log: pino({ level: 'info' }, sink) })
    try {
      await refused // a failed metrics export every 400 ms
      // More exports are refused meanwhile: the same line is not logged again within the minute.
      while (received.filter((r) => r.path === '/v1/metrics').length < 4) await once(http, 'request')
    } finally {
      await gateway.close()
      await telemetry.shutdown().catch(() => undefined) // the final flush is refused too (serve logs it)
    }
    const refusals = lines.filter((line) => line.msg.includes('Unauthorized'))
    // An error line (pino's 50). A refused span export carries the status and the collector's
    // answer too (test/telemetry/diag.test.ts); the metrics reader passes on only the error's text.
    expect(refusals).toEqual([expect.objectContaining({ level: 50, msg: 'OpenTelemetry: PeriodicExportingMetricReader: metrics export failed (error OTLPExporterError: Unauthorized)' })])
  }, 30_000)
})

describe('GET /metrics with no OTLP reader', () => {
  it('logs nothing at a scrape: the resource has settled, and target_info has the host\'s name (not its machine id: otel-env.int.test.ts)', async () => {
    const lines: { level: number; msg: string }[] = []
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as (typeof lines)[number])
        done()
      },
    })
    const config = configWith('{ prometheus: true }')
    const gateway = new Gateway(config)
    const telemetry = startTelemetry(gateway, config.telemetry, { log: pino({ level: 'info' }, sink) })
    const app = buildServer(config, { gateway, telemetry })
    try {
      for (let i = 0; i < 3; i++) {
        const res = await app.inject('/metrics')
        expect(res.statusCode).toBe(200)
        expect(res.body).toMatch(/^target_info\{[^}]*host_name="[^"]+"/m)
      }
    } finally {
      await app.close()
      await gateway.close()
      await telemetry.shutdown()
    }
    expect(lines.filter((line) => line.msg.startsWith('OpenTelemetry:'))).toEqual([])
  })
})
