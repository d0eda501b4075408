// The REST request span as an operator finds it in a backend: one per request, ended
// whatever ends the request (a client that goes away included), and an error span when the
// gateway answered 5xx, on the native routes as on the OIP ones.
import { once } from 'node:events'
import { connect } from 'node:net'
import { SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { inferences } from '../starter/scripted.ts'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { startTelemetry, type Telemetry } from '../../src/telemetry/index.ts'
import { configFrom } from '../helpers.ts'
import { SpanWatcher } from './trace-tools.ts'

const exporter = new InMemorySpanExporter()
const watcher = new SpanWatcher(exporter)
let telemetry: Telemetry
let gateway: Gateway
let app: ReturnType<typeof buildServer>
let port: number

beforeAll(async () => {
  const config = configFrom(`
models:
  m: { kind: scripted, delay_ms: 1, label: 1 }
  broken: { kind: scripted, fail: boom }
  stuck: { kind: scripted, hang: true }
ensembles:
  e: { strategy: deadline-fallback, models: [m] }
  broken: { strategy: deadline-fallback, models: [broken] }
  stuck: { strategy: deadline-fallback, models: [stuck], budget_ms: { default: 20000, max: 20000 } }
`)
  gateway = new Gateway(config)
  telemetry = startTelemetry(gateway, { ...config.telemetry, prometheus: false }, { spanProcessors: [watcher] })
  app = buildServer(config, { gateway, telemetry })
  await gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})

afterAll(async () => {
  await app?.close()
  await gateway?.close()
  await telemetry?.shutdown()
})

beforeEach(() => {
  exporter.reset()
  watcher.ended.length = 0
})

describe('REST request spans', () => {
  it('make a native predict answered 502 an error span', async () => {
    const ended = watcher.nextEnd('request')
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/broken/predict', payload: { inputs: { x: [[0.5, 0.5]] } } })
    expect(res.statusCode).toBe(502)
    const span = await ended
    expect(span.attributes['http.route']).toBe('/v1/ensembles/:name/predict')
    expect(span.attributes['http.response.status_code']).toBe(502)
    expect(span.status.code).toBe(SpanStatusCode.ERROR)
  })

  it('end for a client that goes away mid-predict, with the 499 it was answered', async () => {
    const ended = watcher.nextEnd('request')
    const started = once(inferences, 'infer')
    const body = JSON.stringify({ inputs: { x: [[0.5, 0.5]] } })
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(`POST /v1/ensembles/stuck/predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    await started
    socket.destroy()
    const span = await ended
    expect(span.attributes['http.route']).toBe('/v1/ensembles/:name/predict')
    expect(span.attributes['http.response.status_code']).toBe(499)
  })

  it.each([
    ['native', '/v1/ensembles/e/predict', { inputs: { x: [[1, 2]] } }],
    ['OIP', '/v2/models/e/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] }],
  ])('give a predict (%s) the request span and the predict\'s own, no span per hook or handler', async (_, url, payload) => {
    const ended = watcher.nextEnd('infer m')
    const res = await app.inject({ method: 'POST', url, payload })
    expect(res.statusCode).toBe(200)
    await ended
    expect(watcher.ended.map((s) => s.name).sort()).toEqual(['infer m', 'predict e', 'request'])
  })
})
