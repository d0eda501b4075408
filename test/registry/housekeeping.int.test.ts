// The registry's rules that hold whatever a version's fate: keep_versions bounds the files
// rejected versions leave too, and a repository model no ensemble uses yet is still loaded
// and gated before a version of it serves. Real ONNX models and workers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/types.ts'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
let dir: string
let served: Served

beforeAll(async () => {
  dir = tempDir('specserve-housekeeping-')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, keep_versions: 2, watch: false }
models:
  cancer-main: { kind: onnx, source: repository, path: ${models}/cancer_logreg.onnx }
  spare: { kind: onnx, source: repository, path: ${models}/cancer_logreg.onnx }
  cancer-fallback: { kind: onnx, path: ${models}/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-fallback], budget_ms: { default: 5000, max: 10000 } }
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
})

afterAll(async () => {
  await served.stop()
})

const upload = (model: string, version: number, body: Buffer) =>
  served.app.inject({ method: 'PUT', url: `/v1/models/${model}/versions/${version}`, headers: { 'content-type': 'application/octet-stream' }, payload: body })

describe('registry housekeeping', () => {
  it('keeps the files of only keep_versions rejected versions; the older ones keep their meta.json as history', async () => {
    for (let version = 2; version <= 6; version++) expect((await upload('cancer-main', version, Buffer.alloc(1000, version))).statusCode).toBe(422)
    const file = (version: number) => join(dir, 'repo', 'cancer-main', String(version), 'model.onnx')
    expect([2, 3, 4, 5, 6].filter((v) => existsSync(file(v)))).toEqual([5, 6])
    expect(served.registry.list('cancer-main').map((v) => [v.version, v.state])).toEqual([[1, 'serving'], [2, 'rejected'], [3, 'rejected'], [4, 'rejected'], [5, 'rejected'], [6, 'rejected']])
    expect(served.registry.serving('cancer-main')).toBe(1)
  })

  it('loads a repository model no ensemble uses before its version serves: bytes that are not a model are rejected', async () => {
    const junk = await upload('spare', 2, Buffer.from('not a model at all'))
    expect(junk.statusCode).toBe(422)
    expect(junk.json()).toMatchObject({ code: 'MODEL_REJECTED', message: expect.stringMatching(/failed to load/) })
    expect(served.registry.serving('spare')).toBe(1)
    const good = await upload('spare', 3, readFileSync(join(models, 'cancer_gbdt.onnx')))
    expect(good.statusCode).toBe(201)
    expect(served.registry.serving('spare')).toBe(3)
  })
})
