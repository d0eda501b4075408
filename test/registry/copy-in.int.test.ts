// A model file copied into the watched repository the slow way (cp, scp or rsync --inplace of a
// large file: written in parts, not moved in whole) is not judged half written: the scan that sees
// the first part leaves it, and once the rest is written the version is taken and serves, by a
// scan the registry schedules itself (no watch here: no fs event wakes one). Real ONNX models and
// workers; the scan timing is the registry's own (SETTLE_MS), no sleeps.
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Hex } from '../../src/registry/sha256.ts'
import type { VersionMeta } from '../../src/registry/version-meta.ts'
import { silentLogger } from '../../src/types.ts'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
let dir: string
let served: Served

beforeAll(async () => {
  dir = tempDir('specserve-copy-in-')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false }
models:
  cancer-main: { kind: onnx, source: repository, path: ${models}/cancer_logreg.onnx }
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

/** The version once judged; its listener removed then, not left on the registry for every later judgement. */
const judged = (version: number): Promise<VersionMeta> =>
  new Promise((resolve) => {
    const settled = (model: string, meta: VersionMeta): void => {
      if (model !== 'cancer-main' || meta.version !== version) return
      served.registry.off('settled', settled)
      resolve(meta)
    }
    served.registry.on('settled', settled)
  })

describe('a model file copied into the repository in parts', () => {
  it('is not taken half written; once complete it is taken and serves, though no fs event wakes a scan', async () => {
    const model = readFileSync(join(models, 'cancer_gbdt.onnx'))
    const half = Math.floor(model.length / 2)
    const file = join(dir, 'repo', 'cancer-main', '2', 'model.onnx')
    mkdirSync(dirname(file))
    writeFileSync(file, model.subarray(0, half))
    // The scan a watch event starts while the copy runs: it must leave the file (before, it was
    // judged at once and rejected for good: "failed to load … Protobuf parsing failed").
    await served.registry.rescan()
    expect(served.registry.list('cancer-main').map((m) => m.version)).toEqual([1])
    const version2 = judged(2)
    appendFileSync(file, model.subarray(half))
    expect(await version2).toMatchObject({ version: 2, state: 'serving', source: 'directory', size_bytes: model.length, sha256: sha256Hex(model) })
    expect(served.registry.serving('cancer-main')).toBe(2)
  })
})
