// Serving records on a real broker: one per REST predict, matching the response and the
// published JSON Schema, late answers when configured, sampling, and a consumer nobody
// here wrote (kcat) reading them as JSON.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { startOutput, type Output } from '../../src/output/index.ts'
import type { MetricsSink } from '../../src/types.ts'
import { configFrom, root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { consumeUntil, ensureKcat, startBroker, type Broker, type TextMessage } from './broker.ts'

const run = promisify(execFile)
const TOPIC = 'specserve.records.test'

let broker: Broker
let spoolDir: string
let gateway: Gateway
let app: FastifyInstance
let output: Output

beforeAll(async () => {
  broker = await startBroker()
  spoolDir = tempDir('specserve-spool-')
  const config = configFrom(`
server: { instance: records-test }
executors: { onnx_workers: 2 }
models:
  gbdt:   { kind: onnx, path: ../models/cancer_gbdt.onnx, version: "7" }
  logreg: { kind: onnx, path: ../models/cancer_logreg.onnx, version: "3" }
  slow:   { kind: onnx, path: ../models/cancer_slow.onnx, version: "2", max_concurrency: 1 }
  wine-logreg: { kind: onnx, path: ../models/wine_logreg.onnx }
  wine-tree:   { kind: onnx, path: ../models/wine_tree.onnx }
  wine-knn:    { kind: onnx, path: ../models/wine_knn.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [gbdt, logreg], budget_ms: { default: 200, max: 500 } }
  wine: { strategy: { name: majority-vote, quorum: majority }, models: [wine-logreg, wine-tree, wine-knn], budget_ms: { default: 200, max: 500 } }
  straggler: { strategy: deadline-fallback, models: [slow], budget_ms: { default: 50, max: 500 } }
  quiet: { strategy: deadline-fallback, models: [logreg] }
output:
  kafka:
    brokers: ["${broker.bootstrap}"]
    topic: ${TOPIC}
    spool_dir: ${spoolDir}
    publish_late: true
    sample_rates: { quiet: 0 }
`)
  gateway = new Gateway(config)
  app = buildServer(config, { gateway })
  await gateway.load()
  output = startOutput(gateway)
})

afterAll(async () => {
  await output?.close(5000)
  await app?.close()
  await gateway?.close()
  await broker?.destroy()
})

async function predict(ensemble: string, row: number[], id: string, budgetMs?: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { id, inputs: { input: [row] }, budget_ms: budgetMs } })
  return { status: res.statusCode, body: res.json() }
}

const records = (messages: readonly TextMessage[]): Record<string, unknown>[] => messages.map((m) => JSON.parse(m.value) as Record<string, unknown>)
const results = (messages: readonly TextMessage[]): Record<string, unknown>[] => records(messages).filter((r) => r.type === 'result')
const lateRecords = (messages: readonly TextMessage[]): Record<string, unknown>[] => records(messages).filter((r) => r.type === 'late')

/** The figures /metrics would show for the slow model and the shared worker pool, read in process. */
function figures(): { slowWorkerRuns: number; busyWorkers: number } {
  const got = { slowWorkerRuns: -1, busyWorkers: -1 }
  const sink: MetricsSink = {
    counter: (name, _help, points) => {
      if (name === 'specserve_model_runs') for (const [attrs, n] of points) if (attrs.placement === 'worker') got.slowWorkerRuns = n
    },
    gauge: (name, _help, points) => {
      if (name === 'specserve_onnx_workers_busy') got.busyWorkers = points[0]![1]
    },
  }
  gateway.model('slow').executor.collect!(sink)
  for (const resource of gateway.resources.values()) resource.collect?.(sink)
  return got
}

describe('serving records', () => {
  const responses = new Map<string, Record<string, unknown>>()
  let messages: TextMessage[] = []
  let lateId = ''

  beforeAll(async () => {
    const cancer = samples('cancer').rows
    const wine = samples('wine').rows
    for (let i = 0; i < 20; i++) {
      const [ensemble, row] = i % 2 ? ['wine', wine[i % wine.length]!] : ['cancer', cancer[i % cancer.length]!]
      const { status, body } = await predict(ensemble, row, `rec-${i}`)
      expect(status).toBe(200)
      responses.set(`rec-${i}`, body)
    }
    // The straggler cannot answer within half its warm-up median (50 ms where it takes ~100 ms,
    // 20 ms where it takes 40): the predict fails, its answer comes late. A run its worker
    // had not started by the deadline is dropped unstarted, and then no late answer comes:
    // on a loaded box a worker can wake later than that, so the test tries again (with a new
    // id) until the model's runs count (specserve_model_runs) shows it ran once the workers are idle.
    const slow = (gateway.model('slow').executor.describe!() as { placement: { warm_p50_ms: number } }).placement
    for (let attempt = 0; attempt < 5 && !lateId; attempt++) {
      const id = `rec-late-${attempt}`
      const before = figures().slowWorkerRuns
      const late = await predict('straggler', cancer[0]!, id, Math.min(50, slow.warm_p50_ms / 2))
      expect(late.status).toBe(504)
      responses.set(id, late.body)
      await vi.waitFor(() => expect(figures().busyWorkers).toBe(0), { timeout: 10_000, interval: 5 })
      if (figures().slowWorkerRuns > before) lateId = id
    }
    expect(lateId, 'no straggler run started before its deadline in 5 tries').not.toBe('')
    expect((await predict('quiet', cancer[0]!, 'rec-quiet')).status).toBe(200)
    const missing = (got: readonly TextMessage[]): string[] => {
      const ids = new Set(results(got).map((r) => r.id))
      const lost = [...responses.keys()].filter((id) => !ids.has(id)).map((id) => `result ${id}`)
      return lateRecords(got).some((r) => r.id === lateId) ? lost : [...lost, `late ${lateId}`]
    }
    messages = await consumeUntil(broker.bootstrap, TOPIC, (got) => missing(got).length === 0, undefined, (got) => missing(got).join(', '))
  })

  it('publishes exactly one record per REST predict, keyed by ensemble, matching the response', () => {
    const byId = Map.groupBy(results(messages), (r) => r.id as string)
    for (const [id, response] of responses) {
      const records = byId.get(id) ?? []
      expect(records, id).toHaveLength(1)
      const record = records[0]!
      expect(record).toMatchObject({
        id,
        ensemble: response.ensemble,
        strategy: response.strategy,
        outputs: response.outputs,
        decision: response.decision,
        budget_ms: response.budget_ms,
        elapsed_ms: response.elapsed_ms,
        models: response.models,
        inputs: null,
        trace_id: null,
        instance: 'records-test',
      })
      const message = messages.find((m) => m.value === JSON.stringify(record))!
      expect(message.key).toBe(response.ensemble)
    }
    const cancer = results(messages).find((r) => r.id === 'rec-0')!
    expect((cancer.models as { name: string; version: string; used: boolean }[]).map((m) => [m.name, m.version])).toEqual([
      ['gbdt', '7'],
      ['logreg', '3'],
    ])
    expect(byId.has('rec-quiet')).toBe(false) // sample rate 0
  })

  it('records a failed predict with its error and every model annotation', () => {
    const record = results(messages).find((r) => r.id === lateId)!
    expect(record.error).toEqual({ code: 'DEADLINE_EXCEEDED', message: expect.any(String) })
    expect(record.outputs).toBeNull()
    expect(record.models).toEqual([{ name: 'slow', version: '2', status: 'timeout', latency_ms: expect.any(Number), used: false }])
  })

  it('publishes a late answer, marked late, with the model and its outputs', () => {
    const late = lateRecords(messages).find((r) => r.id === lateId)!
    expect(late.late).toMatchObject({ model: 'slow', version: '2', outputs: { label: [expect.any(Number)] } })
    // It answered after the deadline: its run took longer than the budget the predict had.
    expect((late.late as { latency_ms: number }).latency_ms).toBeGreaterThan(responses.get(lateId)!.budget_ms as number)
  })

  it('digests inputs: equal rows give equal digests, different rows different ones', () => {
    const digest = (id: string): unknown => results(messages).find((r) => r.id === id)!.inputs_digest
    expect(digest('rec-0')).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(digest(lateId)).toBe(digest('rec-0')) // both cancer row 0
    expect(digest('rec-2')).not.toBe(digest('rec-0'))
  })

  it('every record validates against docs/serving-record.schema.json', () => {
    const schema = JSON.parse(readFileSync(join(root, 'docs', 'serving-record.schema.json'), 'utf8')) as object
    const ajv = new Ajv2020({ allErrors: true, strict: true })
    addFormats.default(ajv)
    const validate = ajv.compile(schema)
    for (const m of messages) {
      const ok = validate(JSON.parse(m.value))
      expect(ok, JSON.stringify(validate.errors)).toBe(true)
    }
  })

  it('kcat (librdkafka, not our client) reads every record as JSON', async () => {
    const kcat = await ensureKcat()
    const { stdout } = await run(kcat, ['-b', broker.bootstrap, '-t', TOPIC, '-C', '-e', '-q', '-o', 'beginning', '-f', '%k\t%s\n'], { maxBuffer: 64 * 1024 * 1024 })
    const lines = stdout.split('\n').filter(Boolean)
    expect(lines.length).toBeGreaterThanOrEqual(messages.length)
    for (const line of lines) {
      const [key, value] = [line.slice(0, line.indexOf('\t')), line.slice(line.indexOf('\t') + 1)]
      const record = JSON.parse(value) as { ensemble: string; schema_version: number }
      expect(record.schema_version).toBe(1)
      expect(key).toBe(record.ensemble)
    }
  })

  it('/readyz shows the sink publishing', async () => {
    const res = await app.inject('/readyz')
    expect(res.statusCode).toBe(200)
    expect(res.json().output.kafka).toMatchObject({ kind: 'kafka', state: 'connected', topic: TOPIC, dropped: 0, spooled_records: 0 })
  })
})
