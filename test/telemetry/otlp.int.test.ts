// The OTLP path end to end, with a real in-process OTLP/HTTP receiver: the YAML endpoint
// turns tracing on, spans and the gateway's metrics arrive at /v1/traces and /v1/metrics,
// and shutdown flushes what is pending.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Gateway } from '../../src/gateway.ts'
import { startTelemetry, type Telemetry } from '../../src/telemetry/index.ts'
import { activeTracer } from '../../src/telemetry/tracing.ts'
import { inputFailure } from '../../src/errors.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import { configFrom, samples } from '../helpers.ts'

interface Received {
  readonly path: string
  readonly contentType: string
  readonly body: string
}

let server: Server
const received: Received[] = []
let gateway: Gateway
let telemetry: Telemetry

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const config = configFrom(`
executors: { onnx_workers: 1 }
telemetry: { otlp_endpoint: "http://127.0.0.1:${port}", prometheus: false, service_name: otlp-test }
models:
  cancer-logreg: { kind: onnx, path: ../models/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-logreg], budget_ms: { default: 2000, max: 5000 } }
`)
  gateway = new Gateway(config)
  await gateway.load()
  telemetry = startTelemetry(gateway, config.telemetry)
})

afterAll(async () => {
  await gateway?.close()
  server?.close()
})

describe('OTLP export', () => {
  it('sends the predict\'s spans and the gateway\'s metrics to the configured endpoint, flushed at shutdown', async () => {
    expect(telemetry.tracing).toBe(true)
    expect(activeTracer()).not.toBeNull()
    const spec = gateway.ensemble('cancer').inputs[0]!
    const result = await gateway.predict({ id: 'otlp-1', ensemble: 'cancer', inputs: { input: tensorFromJson([samples('cancer').rows[0]], spec, inputFailure) } })
    expect(result.error).toBeNull()
    await telemetry.shutdown()
    expect(activeTracer()).toBeNull()

    const traces = received.filter((r) => r.path === '/v1/traces')
    expect(traces.length).toBeGreaterThanOrEqual(1)
    const spans = traces.map((t) => t.body).join('\n')
    // OTLP/HTTP JSON: span names, attributes and the service name are in the payload.
    expect(traces[0]!.contentType).toMatch(/json/)
    expect(spans).toContain('predict cancer')
    expect(spans).toContain('infer cancer-logreg')
    expect(spans).toContain('otlp-1')
    expect(spans).toContain('otlp-test')

    const metrics = received.filter((r) => r.path === '/v1/metrics').map((m) => m.body).join('\n')
    expect(metrics).toContain('specserve_predict_requests')
    expect(metrics).toContain('specserve_model_duration_seconds')
  })
})
