// A member the decision cut off, as its span shows it: the response's annotation (cancelled
// or timeout, its latency), not an error, though the run it was in aborted its upstream call.
import { SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import '../starter/scripted.ts'
import { SpanAttr } from '../../src/telemetry/run-trace.ts'
import { configFrom, samples } from '../helpers.ts'
import { WINE_IO, startFaultServer, type Annotation, type FaultServer } from '../executors/remote/fault-server.ts'
import { serveLoaded, type ServedApp } from '../served-app.ts'
import { SpanWatcher } from './trace-tools.ts'

const watcher = new SpanWatcher(new InMemorySpanExporter())
let served: ServedApp
let upstream: FaultServer

beforeAll(async () => {
  upstream = await startFaultServer()
  const config = configFrom(`
models:
  fast: { kind: scripted, delay_ms: 1, input: { name: input, datatype: FP32, shape: [-1, 13] } }
  stuck: { kind: oip, url: "${upstream.url}", model: hang, retries: 0, ${WINE_IO} }
ensembles:
  race: { strategy: deadline-fallback, models: [fast, stuck], budget_ms: { default: 500, max: 5000 } }
  slow: { strategy: deadline-fallback, models: [stuck], budget_ms: { default: 60, max: 5000 } }
`)
  served = await serveLoaded(config, { prometheus: false }, { spanProcessors: [watcher] })
})

afterAll(async () => {
  await served?.close()
  await upstream?.close()
})

const predict = (ensemble: string) =>
  served.app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { input: [samples('wine').rows[0]] } } })

describe('a member span the decision cut', () => {
  it.each([
    ['race', 200, 'cancelled'],
    ['slow', 504, 'timeout'],
  ])('of %s is its annotation, not an error: answered %i, the aborted member is %s', async (ensemble, http, status) => {
    const ended = watcher.nextEnd('infer stuck')
    const aborted = upstream.nextAbort()
    const res = await predict(ensemble)
    expect(res.statusCode).toBe(http)
    await aborted // its upstream call was aborted (a remote member still learning runs on to the deadline)
    const span = await ended
    const annotation = (res.json().models as Annotation[]).find((m) => m.name === 'stuck')!
    expect(annotation.status).toBe(status)
    expect(annotation.error).toBeUndefined()
    expect(span.attributes[SpanAttr.status]).toBe(status)
    expect(span.attributes[SpanAttr.errorCode]).toBeUndefined()
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR)
    expect(span.attributes[SpanAttr.latencyMs]).toBe(annotation.latency_ms)
  })
})
