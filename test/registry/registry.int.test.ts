// Models as data, as an operator drives it over REST: a repository seeded from the config,
// a version directory copied in (picked up by the watch), uploads that pass or fail the
// gate, rollback, and a restart that keeps the state. Real ONNX models, real workers.
import { once } from 'node:events'
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import type { Gateway } from '../../src/gateway.ts'
import type { Registry } from '../../src/registry/registry.ts'
import type { VersionMeta } from '../../src/registry/version-meta.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import type { Logger, MetricAttributes } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const cancer = samples('cancer')
const truth = (JSON.parse(readFileSync(join(models, 'manifest.json'), 'utf8')) as { tasks: { cancer: { truth: number[] } } }).tasks.cancer.truth
const TOKEN = 'registry-s3cret'
const admin = { authorization: `Bearer ${TOKEN}` }
const octets = { ...admin, 'content-type': 'application/octet-stream' }

let dir: string
let repo: string
let registry: Registry
let gateway: Gateway
let app: FastifyInstance
const lines: { msg: string; obj: Record<string, unknown> }[] = []
const log: Logger = {
  info: (obj, msg) => lines.push({ msg, obj: obj as Record<string, unknown> }),
  warn: (obj, msg) => lines.push({ msg, obj: obj as Record<string, unknown> }),
  error: (obj, msg) => lines.push({ msg, obj: obj as Record<string, unknown> }),
}

let served: Served

async function start(): Promise<void> {
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), log)
  ;({ registry, gateway, app } = served)
}

const stop = (): Promise<void> => served.stop()

const predict = async (row = 0): Promise<{ models: { name: string; version: string }[]; outputs: { probabilities: number[][] }; code?: string }> =>
  (await app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: [cancer.rows[row]] } } })).json()

const servingVersion = async (): Promise<string | undefined> => (await predict()).models.find((m) => m.name === 'cancer-main')?.version

const upload = (version: number, body: Buffer, headers: Record<string, string> = octets) =>
  app.inject({ method: 'PUT', url: `/v1/models/cancer-main/versions/${version}`, headers, payload: body })

const versions = async (): Promise<{ serving: number; versions: VersionMeta[] }> => (await app.inject({ url: '/v1/models/cancer-main/versions' })).json()

function eventCounts(): Record<string, number> {
  const counts: Record<string, number> = {}
  registry.collect({
    gauge: () => undefined,
    counter: (name, _help, points) => {
      if (name === 'specserve_model_version_events') for (const [attrs, value] of points as [MetricAttributes, number][]) counts[attrs.event!] = value
    },
  })
  return counts
}

beforeAll(async () => {
  process.env.SPECSERVE_ADMIN_TOKEN = TOKEN
  dir = tempDir('specserve-registry-')
  repo = join(dir, 'repo')
  // The gate: each row's true label (examples) and accuracy on the same rows (data set).
  writeFileSync(join(dir, 'examples.jsonl'), cancer.rows.map((row, i) => JSON.stringify({ inputs: { input: [row] }, outputs: { label: [truth[i]] } })).join('\n'))
  const header = [...cancer.rows[0]!.map((_, i) => `f${i}`), 'truth'].join(',')
  writeFileSync(join(dir, 'holdout.csv'), [header, ...cancer.rows.map((row, i) => [...row, truth[i]].join(','))].join('\n'))
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, keep_versions: 3, max_model_bytes: 1000000 }
models:
  cancer-main:
    kind: onnx
    source: repository
    path: ${models}/cancer_logreg.onnx
    validation:
      examples: examples.jsonl
      dataset: { path: holdout.csv, label: truth, min_accuracy: 0.9 }
  cancer-fallback: { kind: onnx, path: ${models}/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-fallback], budget_ms: { default: 5000, max: 10000 } }
`,
  )
  await start()
})

afterAll(async () => {
  delete process.env.SPECSERVE_ADMIN_TOKEN
  await stop()
})

describe('versioned repository', () => {
  it('imports the config path as version 1, gates it, serves it and names it', async () => {
    const listed = await versions()
    expect(listed.serving).toBe(1)
    expect(listed.versions).toEqual([
      expect.objectContaining({ version: 1, state: 'serving', source: 'seed', gate: { passed: true, reason: null, examples: { passed: 3, total: 3 }, dataset: { accuracy: 1, min_accuracy: 0.9, rows: 3 } } }),
    ])
    expect(existsSync(join(repo, 'cancer-main', '1', 'model.onnx'))).toBe(true)
    expect(await servingVersion()).toBe('1')
    // Nothing served before it: the log names no version it replaced.
    expect(lines.filter((l) => l.msg === 'model version serving')).toEqual([{ msg: 'model version serving', obj: expect.objectContaining({ model: 'cancer-main', version: 1, previous: null }) }])
    const list = (await app.inject({ url: '/v1/models' })).json()
    expect(list.models).toContainEqual({ name: 'cancer-main', kind: 'onnx', version: '1', source: 'repository', ensembles: ['cancer'] })
    expect(list.models).toContainEqual(expect.objectContaining({ name: 'cancer-fallback', source: 'config' }))
  })

  it('picks up a version directory moved into the repository, without a signal, and swaps it in', async () => {
    const staged = join(dir, 'staging')
    mkdirSync(staged)
    copyFileSync(join(models, 'cancer_gbdt.onnx'), join(staged, 'model.onnx'))
    const settled = once(registry, 'settled')
    renameSync(staged, join(repo, 'cancer-main', '2'))
    const [model, meta] = (await settled) as [string, VersionMeta]
    expect(model).toBe('cancer-main')
    expect(meta).toMatchObject({ version: 2, state: 'serving', source: 'directory' })
    for (let row = 0; row < cancer.rows.length; row++) {
      const result = await predict(row)
      expect(result.models.find((m) => m.name === 'cancer-main')?.version).toBe('2')
      cancer.probabilities.cancer_gbdt![row]!.forEach((p, i) => expect(result.outputs.probabilities[0]![i]).toBeCloseTo(p, 4))
    }
    expect((await versions()).versions.map((v) => [v.version, v.state])).toEqual([[1, 'ready'], [2, 'serving']])
    expect(lines.filter((l) => l.msg === 'model version serving').at(-1)?.obj).toMatchObject({ model: 'cancer-main', version: 2, previous: 1 })
  })
})

describe('validation gate', () => {
  it('rejects a version that fails an example (and scores low): 422, the reason kept, the previous one serving', async () => {
    const res = await upload(3, readFileSync(join(models, 'cancer_mlp.onnx')))
    expect(res.statusCode).toBe(422)
    expect(res.json()).toMatchObject({ code: 'MODEL_REJECTED', message: expect.stringMatching(/example 3, output "label": element 0 is 0, expected 1/) })
    expect((await versions()).versions.find((v) => v.version === 3)).toMatchObject({ state: 'rejected', gate: { passed: false, examples: null } })
    expect(await servingVersion()).toBe('2')
    expect(lines.at(-1)).toMatchObject({ msg: 'model version rejected; version 2 keeps serving', obj: { model: 'cancer-main', version: 3 } })
  })

  it('rejects a model whose inputs differ from its ensemble siblings', async () => {
    const res = await upload(4, readFileSync(join(models, 'wine_logreg.onnx')))
    expect(res.statusCode).toBe(422)
    expect(res.json().message).toMatch(/inputs of "cancer-fallback" \(input:FP32\[-1,30\]\) differ from "cancer-main" \(input:FP32\[-1,13\]\)/)
    expect(await servingVersion()).toBe('2')
  })

  it('rejects a truncated file and a file that is not ONNX', async () => {
    const truncated = readFileSync(join(models, 'cancer_gbdt.onnx')).subarray(0, 200)
    for (const [version, bytes] of [[5, truncated], [6, Buffer.from('not a model at all')]] as const) {
      const res = await upload(version, bytes)
      expect(res.statusCode).toBe(422)
      expect(res.json().message).toMatch(/failed to load/)
    }
    expect(await servingVersion()).toBe('2')
    expect(eventCounts()).toMatchObject({ rejected: 4 })
  })
})

describe('uploads', () => {
  it('serves a passing upload at once (201)', async () => {
    const res = await upload(7, readFileSync(join(models, 'cancer_logreg.onnx')))
    expect(res.statusCode).toBe(201)
    expect(res.json().version).toMatchObject({ version: 7, state: 'serving', source: 'upload' })
    expect(await servingVersion()).toBe('7')
  })

  it('refuses an existing version (409), a huge body (413), a bad version (400) and a missing token (401)', async () => {
    const model = readFileSync(join(models, 'cancer_logreg.onnx'))
    const exists = await upload(7, model)
    expect(exists.statusCode).toBe(409)
    expect(exists.json().code).toBe('VERSION_EXISTS')
    const huge = await upload(8, Buffer.alloc(1_500_000))
    expect(huge.statusCode).toBe(413)
    expect(huge.json().code).toBe('PAYLOAD_TOO_LARGE')
    expect((await upload(0, model)).json().code).toBe('BAD_REQUEST')
    // Past 2^53 - 1 a number names no single version: 9999999999999999 would be stored as 10000000000000000.
    const tooHigh = await app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/9999999999999999', headers: octets, payload: model })
    expect(tooHigh.statusCode).toBe(400)
    expect(tooHigh.json()).toMatchObject({ code: 'BAD_REQUEST', message: 'a version is an integer from 1 to 9007199254740991' })
    const anonymous = await upload(8, model, { 'content-type': 'application/octet-stream' })
    expect(anonymous.statusCode).toBe(401)
    expect(anonymous.json().code).toBe('UNAUTHENTICATED')
    expect((await versions()).versions.map((v) => v.version)).not.toContain(8)
    expect(existsSync(join(repo, 'cancer-main', '10000000000000000'))).toBe(false)
    expect((await app.inject({ url: '/v1/models/cancer-main/versions/8' })).json().code).toBe('UNKNOWN_VERSION')
  })
})

describe('rollback', () => {
  it('serves the previous passing version at once, retiring the one rolled back from, down to NO_PREVIOUS_VERSION', async () => {
    expect((await app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback' })).statusCode).toBe(401)
    const first = await app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback', headers: admin })
    expect(first.json()).toMatchObject({ model: 'cancer-main', serving: 2 })
    expect(await servingVersion()).toBe('2')
    expect((await versions()).versions.find((v) => v.version === 7)).toMatchObject({ state: 'retired', reason: 'rolled back to version 2' })
    expect((await app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback', headers: admin })).json()).toMatchObject({ serving: 1 })
    const none = await app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback', headers: admin })
    expect(none.statusCode).toBe(409)
    expect(none.json().code).toBe('NO_PREVIOUS_VERSION')
    expect(await servingVersion()).toBe('1')
    expect(eventCounts()).toMatchObject({ served: 2, rolled_back: 2 })
  })
})

describe('restart', () => {
  it('keeps which version serves; a half-stored version is cleaned away and never serves', async () => {
    await stop()
    // What a crash leaves: a store that never reached its rename, and a directory still being copied in.
    mkdirSync(join(repo, 'cancer-main', '.incoming-9-deadbeef'))
    writeFileSync(join(repo, 'cancer-main', '.incoming-9-deadbeef', 'model.onnx'), readFileSync(join(models, 'cancer_gbdt.onnx')).subarray(0, 100))
    mkdirSync(join(repo, 'cancer-main', '10'))
    await start()
    const listed = await versions()
    expect(listed.serving).toBe(1)
    expect(listed.versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(existsSync(join(repo, 'cancer-main', '.incoming-9-deadbeef'))).toBe(false)
    expect(await servingVersion()).toBe('1')
  })
})

describe('under steady predict load', () => {
  it('a swap, a rejection and a rollback fail no request', async () => {
    const spec = gateway.ensemble('cancer').inputs[0]!
    const input = tensorFromJson([cancer.rows[0]], spec, inputFailure)
    let running = true
    const seen = new Map<string, number>()
    const failures: unknown[] = []
    // Four clients, each sending its next predict as soon as the last is answered, until the operations are done.
    const client = async (): Promise<void> => {
      while (running) {
        const result = await gateway.predict({ id: 'load', ensemble: 'cancer', inputs: { input } })
        if (result.error) failures.push(result.error)
        const version = result.models.find((m) => m.name === 'cancer-main')!.version
        seen.set(version, (seen.get(version) ?? 0) + 1)
      }
    }
    const clients = [client(), client(), client(), client()]
    const swap = await upload(11, readFileSync(join(models, 'cancer_gbdt.onnx')))
    const rejection = await upload(12, readFileSync(join(models, 'cancer_mlp.onnx')))
    const rollback = await app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback', headers: admin })
    const after = seen.get('1') ?? 0
    // Back on version 1: wait for its answers to show, then stop the clients.
    while ((seen.get('1') ?? 0) < after + 20) await new Promise<void>((resolve) => setImmediate(resolve))
    running = false
    await Promise.all(clients)
    expect([swap.statusCode, rejection.statusCode, rollback.statusCode]).toEqual([201, 422, 200])
    expect(failures).toEqual([])
    expect(seen.get('11')).toBeGreaterThan(0)
    expect(seen.get('12')).toBeUndefined()
    expect(seen.get('1')).toBeGreaterThan(20)
  })
})
