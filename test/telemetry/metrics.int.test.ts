// GET /metrics as Prometheus scrapes it: valid exposition text (checked by a real parser),
// counters that match the predicts made, histograms that add up, runtime gauges; p99 in
// the model stats over REST and gRPC; Retry-After on overload.
import { getPriority } from 'node:os'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { startHarness, unary, type Harness } from '../api/grpc/harness.ts' // also registers the scripted kind
import { configFrom, freePort, samples } from '../helpers.ts'
import { parseExposition, promparse, sample, type Family } from './prometheus-text.ts'
import { serveLoaded, type ServedApp } from '../served-app.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

let gateway: Gateway
let app: ServedApp['app']
let close: ServedApp['close'] | undefined
const cancer = samples('cancer')
const x = { x: [[0.5, 0.5]] }

async function scrape(): Promise<Map<string, Family>> {
  const res = await app.inject('/metrics')
  expect(res.statusCode).toBe(200)
  expect(res.headers['content-type']).toMatch(/^text\/plain/)
  return parseExposition(res.body)
}

const predict = (ensemble: string, inputs: object) => app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs } })

beforeAll(async () => {
  promparse()
  const closedPort = await freePort()
  const config = configFrom(`
server: { max_in_flight: 1 }
executors: { onnx_workers: 2 }
models:
  cancer-mlp: { kind: onnx, path: ../models/cancer_mlp.onnx, version: "4" }
  cancer-logreg: { kind: onnx, path: ../models/cancer_logreg.onnx }
  cancer-own: { kind: onnx, path: ../models/cancer_logreg.onnx, dedicated_workers: 1 }
  fast: { kind: scripted, delay_ms: 1 }
  slow: { kind: scripted, delay_ms: 150 }
  broken: { kind: scripted, fail: boom }
  down:
    kind: oip
    url: http://127.0.0.1:${closedPort}
    model: m
    retries: 0
    circuit_breaker: { failures: 1, reset_ms: 600000 }
    inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }]
    outputs: [{ name: label, datatype: INT64, shape: [-1] }]
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-mlp, cancer-logreg], budget_ms: { default: 2000, max: 5000 } }
  race: { strategy: deadline-fallback, models: [fast, slow], budget_ms: { default: 2000, max: 5000 } }
  slow: { strategy: deadline-fallback, models: [slow], budget_ms: { default: 2000, max: 5000 } }
  broken: { strategy: deadline-fallback, models: [broken] }
  down: { strategy: deadline-fallback, models: [down] }
  own: { strategy: deadline-fallback, models: [cancer-own] }
`)
  ;({ gateway, app, close } = await serveLoaded(config))
})

afterAll(async () => {
  await close?.()
})

describe('GET /metrics', () => {
  it('counts predicts per ensemble and outcome, and per model and status', async () => {
    for (const row of cancer.rows.slice(0, 3)) expect((await predict('cancer', { input: [row] })).statusCode).toBe(200)
    expect((await predict('broken', x)).statusCode).toBe(502)
    expect((await predict('broken', x)).statusCode).toBe(502)
    expect((await predict('race', x)).statusCode).toBe(200)
    expect((await predict('down', x)).statusCode).toBe(502) // nothing listens there

    const m = await scrape()
    expect(m.get('specserve_predict_requests_total')?.type).toBe('COUNTER')
    expect(sample(m, 'specserve_predict_requests_total', { ensemble: 'cancer', outcome: 'ok' }).value).toBe(3)
    expect(sample(m, 'specserve_predict_requests_total', { ensemble: 'broken', outcome: 'ALL_MODELS_FAILED' }).value).toBe(2)
    // Every outcome a predict can end with is there at 0 before its first one, so rate() sees that first one.
    for (const outcome of ['DEADLINE_EXCEEDED', 'ALL_MODELS_FAILED', 'CANCELLED', 'OVERLOADED']) {
      expect(sample(m, 'specserve_predict_requests_total', { ensemble: 'cancer', outcome }).value).toBe(0)
    }
    expect(sample(m, 'specserve_predict_requests_total', { ensemble: 'broken', outcome: 'ok' }).value).toBe(0)
    expect(sample(m, 'specserve_model_calls_total', { model: 'broken', status: 'error' }).value).toBe(2)
    expect(sample(m, 'specserve_model_calls_total', { model: 'cancer-mlp', version: '4', status: 'ok' }).value).toBe(3)
    // race: fast answers, slow is cut off by the decision.
    expect(sample(m, 'specserve_model_calls_total', { model: 'slow', status: 'cancelled' }).value).toBe(1)
    expect(sample(m, 'specserve_model_wins_total', { model: 'fast' }).value).toBe(1)
    expect(sample(m, 'specserve_model_wins_total', { model: 'slow' }).value).toBe(0)
    // Members started per request = members started / requests: both members of every cancer and race request.
    expect(sample(m, 'specserve_predict_members_started_total', { ensemble: 'cancer' }).value).toBe(6)
    expect(sample(m, 'specserve_predict_members_started_total', { ensemble: 'race' }).value).toBe(2)
  })

  it('exports latency and budget histograms whose buckets add up', async () => {
    const m = await scrape()
    const h = sample(m, 'specserve_predict_duration_seconds', { ensemble: 'cancer' })
    expect(m.get('specserve_predict_duration_seconds')?.type).toBe('HISTOGRAM')
    expect(h.count).toBe(3)
    const counts = h.buckets!.map(({ le, count }) => [le === '+Inf' ? Infinity : Number(le), count] as const)
    for (let i = 1; i < counts.length; i++) {
      expect(counts[i]![0]).toBeGreaterThan(counts[i - 1]![0])
      expect(counts[i]![1]).toBeGreaterThanOrEqual(counts[i - 1]![1]) // cumulative
    }
    expect(counts.at(-1)).toEqual([Infinity, 3])
    expect(h.sum).toBeGreaterThan(0)
    expect(h.sum).toBeLessThan(3 * 2) // three predicts, each well under their 2 s budget
    const model = sample(m, 'specserve_model_duration_seconds', { model: 'cancer-mlp' })
    expect(model.count).toBe(3)
    const budget = sample(m, 'specserve_predict_budget_used_ratio', { ensemble: 'cancer' })
    expect(budget.buckets!.find((b) => b.le === '+Inf')?.count).toBe(3)
    expect(budget.buckets!.find((b) => b.le === '0.1')?.count).toBe(3) // a few ms of a 2000 ms budget
  })

  it("exports the event loop's delay and utilization and the collector's pauses, as OpenTelemetry's Node.js runtime conventions name them", async () => {
    await scrape() // a new interval for the delay
    const until = performance.now() + 120
    while (performance.now() < until); // a turn of 120 ms: what a stuck loop looks like from outside
    // A timer due after the sample due in that turn: the sample has run.
    await new Promise((resolve) => setTimeout(resolve, 0))
    const m = await scrape()
    expect(m.get('nodejs_eventloop_delay_max')?.type).toBe('GAUGE')
    expect(sample(m, 'nodejs_eventloop_delay_max').value).toBeGreaterThanOrEqual(0.11)
    // The cumulative histogram counted that sample above 100 ms.
    expect(m.get('specserve_eventloop_delay_seconds')?.type).toBe('HISTOGRAM')
    const delays = sample(m, 'specserve_eventloop_delay_seconds')
    expect(delays.buckets!.find((b) => b.le === '0.1')!.count).toBeLessThan(delays.count!)
    expect(delays.buckets!.at(-1)).toEqual({ le: '+Inf', count: delays.count })
    for (const stat of ['min', 'mean', 'stddev', 'p50', 'p90', 'p99']) expect(sample(m, `nodejs_eventloop_delay_${stat}`).value).toBeGreaterThanOrEqual(0)
    const utilization = sample(m, 'nodejs_eventloop_utilization').value!
    expect(utilization).toBeGreaterThan(0)
    expect(utilization).toBeLessThanOrEqual(1)
    expect(m.get('nodejs_eventloop_time_total')?.type).toBe('COUNTER')
    expect(sample(m, 'nodejs_eventloop_time_total', { nodejs_eventloop_state: 'active' }).value).toBeGreaterThanOrEqual(0.12)
    expect(sample(m, 'nodejs_eventloop_time_total', { nodejs_eventloop_state: 'idle' }).value).toBeGreaterThan(0)

    gc()
    let after = m
    // The collector's entries reach their observer on a later turn of the loop (an inject alone may never turn it).
    for (let i = 0; i < 100 && !after.get('v8js_gc_duration')?.samples.some((s) => s.labels.v8js_gc_type === 'major'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 0))
      after = await scrape()
    }
    expect(after.get('v8js_gc_duration')?.type).toBe('HISTOGRAM')
    const major = sample(after, 'v8js_gc_duration', { v8js_gc_type: 'major' })
    expect(major.count).toBeGreaterThanOrEqual(1)
    expect(major.buckets!.at(-1)).toEqual({ le: '+Inf', count: major.count })
  })

  it('exports runtime gauges: in flight, workers, queue, readiness, circuit breakers, Kafka output', async () => {
    // An attached component (as the Kafka sink is) reports its own metrics at collection time.
    gateway.attach('output.kafka', {
      status: () => ({}),
      collect(out) {
        out.gauge('specserve_output_buffered_records', 'Serving records waiting in memory for Kafka.', [[{}, 4]])
        out.gauge('specserve_output_spooled_records', 'Serving records in the local spool file.', [[{}, 2]])
        out.gauge('specserve_output_spool_bytes', 'Size of the local spool file.', [[{}, 512]], 'By')
        out.counter('specserve_output_published_records', 'Serving records acknowledged by Kafka.', [[{}, 10]])
        out.counter('specserve_output_dropped_records', 'Serving records dropped.', [[{}, 1]])
      },
    })
    const m = await scrape()
    gateway.components.delete('output.kafka')
    expect(sample(m, 'specserve_requests_in_flight').value).toBe(0)
    expect(sample(m, 'specserve_ready').value).toBe(1)
    // The shared pool's gauges carry no label; a model's dedicated workers', its name.
    const pools = (family: string) => Object.fromEntries(m.get(family)!.samples.map((s) => [s.labels.model ?? 'shared', s.value]))
    expect(pools('specserve_onnx_workers')).toEqual({ shared: 2, 'cancer-own': 1 })
    expect(pools('specserve_onnx_queue_depth')).toEqual({ shared: 0, 'cancer-own': 0 })
    expect(pools('specserve_onnx_workers_busy')).toEqual({ shared: expect.any(Number), 'cancer-own': 0 })
    expect(m.get('specserve_onnx_workers_busy')?.type).toBe('GAUGE')
    // executors.onnx_worker_nice by default (10): the workers run below the event loop, as far as nice 19.
    expect(pools('specserve_onnx_worker_nice')).toEqual({ shared: Math.min(10, 19 - getPriority()), 'cancer-own': Math.min(10, 19 - getPriority()) })
    // The unreachable upstream opened its breaker after one failure.
    expect(sample(m, 'specserve_circuit_breaker_state', { model: 'down' }).value).toBe(2)
    expect(sample(m, 'specserve_output_spooled_records').value).toBe(2)
    expect(sample(m, 'specserve_output_dropped_records_total').value).toBe(1)
    expect(sample(m, 'specserve_config_reloads_total', { result: 'applied' }).value).toBe(0)
  })

  it('reports p99 in the model stats over REST', async () => {
    const stats = (await app.inject('/v1/models/cancer-mlp')).json().stats
    expect(stats.ok).toBe(3)
    expect(stats.duration_ms.p99).toBeGreaterThanOrEqual(stats.duration_ms.min)
    expect(stats.duration_ms.p99).toBeLessThanOrEqual(stats.duration_ms.max)
    expect(stats.since).toMatch(/^\d{4}-\d\d-\d\dT/)
  })

  it('answers 503 OVERLOADED with Retry-After when max_in_flight is reached, and counts it', async () => {
    // Admission is in front of fastify: on a real socket. Whichever of the two arrives second is shed (max_in_flight: 1).
    await app.listen({ host: '127.0.0.1', port: 0 })
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v1/ensembles/slow/predict`
    const send = () => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: x }) })
    const both = await Promise.all([send(), send()])
    const shed = both.find((r) => r.status === 503)
    const served = both.find((r) => r.status === 200)
    expect(((await shed?.json()) as { code: string }).code).toBe('OVERLOADED')
    expect(shed?.headers.get('retry-after')).toBe('1')
    expect(served?.headers.get('retry-after')).toBeNull()
    const m = await scrape()
    expect(sample(m, 'specserve_predict_requests_total', { ensemble: 'slow', outcome: 'OVERLOADED' }).value).toBe(1)
    expect(sample(m, 'specserve_predict_requests_total', { ensemble: 'slow', outcome: 'ok' }).value).toBe(1)
    // Its help says so: the shed request never ran.
    expect(m.get('specserve_predict_requests_total')?.help).toMatch(/OVERLOADED includes requests shed at max_in_flight before they ran/)
  })

  it('is absent with telemetry.prometheus: false', async () => {
    const config = configFrom(`
telemetry: { prometheus: false }
models: { fast: { kind: scripted } }
ensembles: { e: { strategy: deadline-fallback, models: [fast] } }
`)
    const other = new Gateway(config)
    const off = buildServer(config, { gateway: other, telemetry: { tracing: false, prometheus: null, resourceSettled: async () => {}, fastifyPlugin: () => null, shutdown: async () => {} } })
    expect((await off.inject('/metrics')).statusCode).toBe(404)
    await off.close()
    await other.close()
  })
})

describe('gRPC GetModel', () => {
  let h: Harness
  beforeAll(async () => {
    h = await startHarness()
  })
  afterAll(async () => h?.close())

  it('returns the stats with p99', async () => {
    await unary(h.gatewayClient, 'Predict', { ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0], shape: [1, 30] } } })
    const info = await unary<{ stats: { ok: string; duration_ms: { mean: number; min: number; max: number; p99: number } } }>(h.gatewayClient, 'GetModel', { name: 'cancer-mlp' })
    expect(Number(info.stats.ok)).toBeGreaterThanOrEqual(1)
    expect(info.stats.duration_ms.p99).toBeGreaterThan(0)
    expect(info.stats.duration_ms.p99).toBeGreaterThanOrEqual(info.stats.duration_ms.min)
    expect(info.stats.duration_ms.p99).toBeLessThanOrEqual(info.stats.duration_ms.max)
  })
})
