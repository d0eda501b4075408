// A registry swap reloads the model it swaps, nothing else: a sibling whose file was replaced
// beside the config (here with bytes that are not ONNX) keeps serving what it loaded, and its
// failure is never blamed on the version being judged. The next config reload is where the
// replaced file is taken (and refused, the old state serving on).
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'
import { silentLogger } from '../../src/types.ts'

const models = join(root, 'models')
const cancer = samples('cancer')
const TOKEN = 'sibling-s3cret'
let dir: string
let served: Served

beforeAll(async () => {
  process.env.SPECSERVE_ADMIN_TOKEN = TOKEN
  dir = tempDir('specserve-sibling-')
  copyFileSync(join(models, 'cancer_logreg.onnx'), join(dir, 'fallback.onnx'))
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo }
models:
  cancer-main: { kind: onnx, source: repository, path: ${models}/cancer_logreg.onnx }
  cancer-fallback: { kind: onnx, path: ./fallback.onnx }
ensembles:
  cancer: { strategy: majority-vote, models: [cancer-main, cancer-fallback], budget_ms: { default: 5000, max: 10000 } }
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
})

afterAll(async () => {
  delete process.env.SPECSERVE_ADMIN_TOKEN
  await served.stop()
})

it('a swap serves the new version although a sibling file changed on disk; that file waits for the next config reload', async () => {
  const { app, gateway } = served
  const fallback = gateway.model('cancer-fallback')
  writeFileSync(join(dir, 'fallback.onnx'), 'not an onnx model')

  const res = await app.inject({
    method: 'PUT',
    url: '/v1/models/cancer-main/versions/2',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
    payload: readFileSync(join(models, 'cancer_gbdt.onnx')),
  })
  expect(res.json().version).toMatchObject({ version: 2, state: 'serving', reason: null })
  expect(gateway.model('cancer-fallback')).toBe(fallback) // not reloaded
  const answer = (await app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: [cancer.rows[0]] } } })).json()
  expect(answer.models.map((m: { name: string; status: string; version: string }) => [m.name, m.status, m.version])).toEqual([
    ['cancer-main', 'ok', '2'],
    ['cancer-fallback', 'ok', expect.any(String)],
  ])

  await expect(gateway.reload(loadConfigFile(join(dir, 'gateway.yaml')))).rejects.toThrow(/cancer-fallback/)
  expect(gateway.model('cancer-fallback')).toBe(fallback)
})
