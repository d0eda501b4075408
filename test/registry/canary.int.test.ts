// Canary rollout with real models under steady predict load: a passing version takes part of
// the traffic, the serving version runs beside it on those requests, and it is promoted, or
// rolled back, on that evidence, with no failed request either way.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import type { Gateway } from '../../src/gateway.ts'
import type { Registry } from '../../src/registry/registry.ts'
import type { VersionMeta } from '../../src/registry/version-meta.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import { silentLogger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const examples = join(root, 'examples')
const cancer = samples('cancer')
let dir: string
let registry: Registry
let gateway: Gateway
let app: FastifyInstance
let served: Served

beforeAll(async () => {
  dir = tempDir('specserve-canary-')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false }
models:
  cancer-main:
    kind: onnx
    source: repository
    path: ${models}/cancer_logreg.onnx
    validation: { dataset: { path: ${examples}/cancer_holdout.csv, label: target, min_accuracy: 0.95 } }
    rollout: { canary: { weight: 0.5, promote_after: 30, max_error_rate: 0.01, min_agreement: 0.9 } }
  cancer-fallback: { kind: onnx, path: ${models}/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-fallback], budget_ms: { default: 5000, max: 10000 } }
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
  ;({ registry, gateway, app } = served)
})

afterAll(async () => {
  await served.stop()
})

/** Four clients cycling over the held-out rows until `version` is judged; what they saw. */
async function underLoad(version: number, upload: () => Promise<number>): Promise<{ status: number; meta: VersionMeta; seen: Map<string, number>; failures: unknown[] }> {
  const spec = gateway.ensemble('cancer').inputs[0]!
  const inputs = cancer.rows.map((row) => ({ input: tensorFromJson([row], spec, inputFailure) }))
  const seen = new Map<string, number>()
  const failures: unknown[] = []
  let judged: VersionMeta | undefined
  const settled = new Promise<VersionMeta>((resolve) => {
    const on = (_model: string, meta: VersionMeta): void => {
      if (meta.version !== version || meta.state === 'canary') return
      registry.off('settled', on)
      resolve(meta)
    }
    registry.on('settled', on)
  }).then((meta) => (judged = meta))
  const client = async (offset: number): Promise<void> => {
    for (let i = offset; judged === undefined; i++) {
      const result = await gateway.predict({ id: `c${i}`, ensemble: 'cancer', inputs: inputs[i % inputs.length]! })
      if (result.error) failures.push(result.error)
      const v = result.models.find((m) => m.name === 'cancer-main')!.version
      seen.set(v, (seen.get(v) ?? 0) + 1)
    }
  }
  const clients = [0, 1, 2, 3].map(client)
  const status = await upload()
  const meta = await settled
  await Promise.all(clients)
  return { status, meta, seen, failures }
}

const put = (version: number, file: string) => async (): Promise<number> =>
  (await app.inject({ method: 'PUT', url: `/v1/models/cancer-main/versions/${version}`, headers: { 'content-type': 'application/octet-stream' }, payload: readFileSync(join(models, file)) })).statusCode

describe('canary rollout', () => {
  it('a version that agrees with the serving one is promoted after promote_after requests', async () => {
    // Gradient boosting labels the held-out rows as logistic regression does.
    const { status, meta, seen, failures } = await underLoad(2, put(2, 'cancer_gbdt.onnx'))
    expect(status).toBe(202)
    expect(failures).toEqual([])
    expect(seen.get('2')).toBeGreaterThan(0) // the canary answered part of the traffic…
    expect(seen.get('1')).toBeGreaterThan(0) // …and the serving version the rest
    expect(meta).toMatchObject({ version: 2, state: 'serving', rollout: { decision: 'promoted', evidence: { errors: 0, agreement: 1 } } })
    expect(meta.rollout!.evidence.requests).toBeGreaterThanOrEqual(30)
    expect(registry.list('cancer-main').find((v) => v.version === 1)!.state).toBe('ready')
  })

  it('a version that disagrees is rolled back, with its evidence; the serving version stays', async () => {
    // The MLP labels the third held-out row differently: a third of its answers disagree.
    const { status, meta, failures } = await underLoad(3, put(3, 'cancer_mlp.onnx'))
    expect(status).toBe(202)
    expect(failures).toEqual([])
    expect(meta).toMatchObject({ version: 3, state: 'rejected', rollout: { decision: 'rolled_back' }, reason: expect.stringMatching(/^canary rolled back: agreement with the serving version 0\.\d+ over \d+ compared answers is below min_agreement 0\.9$/) })
    expect(registry.serving('cancer-main')).toBe(2)
    const result = await gateway.predict({ id: 'after', ensemble: 'cancer', inputs: { input: tensorFromJson([cancer.rows[2]], gateway.ensemble('cancer').inputs[0]!, inputFailure) } })
    expect(result.models.find((m) => m.name === 'cancer-main')!.version).toBe('2')
  })
})
