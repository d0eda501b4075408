// Models as data meeting the gateway's other changes of state: a config reload at the same
// time as a version swap (each keeps the other's change), and an upload while the gateway is
// still loading or already draining for a stop (a good model is never rejected for that).
// Real ONNX models and workers.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { loadConfigFile } from '../../src/config/load.ts'
import { Gateway } from '../../src/gateway.ts'
import type { ModelRuntime } from '../../src/model-runtimes.ts'
import { Registry } from '../../src/registry/registry.ts'
import { reloadFromFile, type ReloadOutcome } from '../../src/reload/index.ts'
import { silentLogger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const cancer = samples('cancer')
let dir: string
let served: Served | undefined

const yaml = (extraEnsemble = ''): string => `
executors: { onnx_workers: 1 }
repository: { path: ./repo, keep_versions: 3, watch: false }
models:
  extra-gbdt: { kind: onnx, path: ${models}/cancer_gbdt.onnx }
  extra-mlp: { kind: onnx, path: ${models}/cancer_mlp.onnx }
  cancer-main: { kind: onnx, source: repository, path: ${models}/cancer_logreg.onnx }
  cancer-fallback: { kind: onnx, path: ${models}/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-fallback], budget_ms: { default: 5000, max: 10000 } }
${extraEnsemble}`
const withCancer2 = yaml('  cancer2: { strategy: deadline-fallback, models: [extra-gbdt, extra-mlp], budget_ms: { default: 5000, max: 10000 } }')

const upload = (app: FastifyInstance, version: number) =>
  app.inject({ method: 'PUT', url: `/v1/models/cancer-main/versions/${version}`, headers: { 'content-type': 'application/octet-stream' }, payload: readFileSync(join(models, 'cancer_gbdt.onnx')) })

/** The version of cancer-main that answers a predict now. */
async function answeringVersion(app: FastifyInstance): Promise<string | undefined> {
  const res = (await app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: [cancer.rows[0]] } } })).json() as { models: { name: string; version: string }[] }
  return res.models.find((m) => m.name === 'cancer-main')?.version
}

/** Runs `then` when the registry's gate starts judging `version` of cancer-main (the swap is under way). */
function whenGating(registry: Registry, version: number, then: () => void): void {
  const gate = registry.gate.bind(registry)
  registry.gate = (loaded: readonly ModelRuntime[]) => {
    if (loaded.some((m) => m.model.name === 'cancer-main' && (m.model.version === String(version) || m.model.canary?.version === String(version)))) then()
    return gate(loaded)
  }
}

beforeEach(() => {
  dir = tempDir('specserve-concurrent-')
  writeFileSync(join(dir, 'gateway.yaml'), yaml())
})

afterEach(async () => {
  await served?.stop()
  served = undefined
})

describe('a config reload and a version swap at the same time', () => {
  it('a reload, then an upload at once: the reload\'s ensemble stays and the new version serves', async () => {
    served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
    writeFileSync(join(dir, 'gateway.yaml'), withCancer2)
    const [reloaded, uploaded] = await Promise.all([reloadFromFile(served.gateway, silentLogger), upload(served.app, 2)])
    expect(reloaded).toMatchObject({ ok: true, report: { ensembles: { added: ['cancer2'] } } })
    expect(uploaded.statusCode).toBe(201)
    expect([...served.gateway.ensembles.keys()]).toEqual(['cancer', 'cancer2'])
    expect(served.registry.serving('cancer-main')).toBe(2)
    expect(await answeringVersion(served.app)).toBe('2')
  })

  it('an upload, then a reload asked for while the version is judged: the new version serves and the reload applies', async () => {
    served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
    const { registry, gateway, app } = served
    let reloading: Promise<ReloadOutcome> | undefined
    whenGating(registry, 2, () => {
      writeFileSync(join(dir, 'gateway.yaml'), withCancer2)
      reloading = reloadFromFile(gateway, silentLogger)
    })
    const uploaded = await upload(app, 2)
    expect(uploaded.statusCode).toBe(201)
    expect(await reloading).toMatchObject({ ok: true, report: { ensembles: { added: ['cancer2'] } } })
    expect(registry.serving('cancer-main')).toBe(2)
    expect(gateway.models.get('cancer-main')!.model.version).toBe('2')
    expect(await answeringVersion(app)).toBe('2')
  })
})

describe('an upload while the gateway is not ready', () => {
  it('during the first load: held until the gateway is ready, then judged and served (201)', async () => {
    const config = loadConfigFile(join(dir, 'gateway.yaml'))
    const registry = Registry.open(config)!
    const gateway = new Gateway(config, { versions: registry })
    const app = buildServer(config, { gateway, registry })
    registry.attach(gateway, silentLogger)
    served = { registry, gateway, app, stop: async () => (await registry.close(), await app.close(), await gateway.close()) }
    const loading = gateway.load() // as serve does: listening before the load is done
    const uploading = upload(app, 2)
    await loading
    await registry.start()
    const uploaded = await uploading
    expect(uploaded.statusCode).toBe(201)
    expect(uploaded.json().version).toMatchObject({ version: 2, state: 'serving' })
    expect(await answeringVersion(app)).toBe('2')
  })

  it('when a stop begins: 503 NOT_READY, the version left to judge, and it serves after the restart', async () => {
    served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
    const { registry, gateway, app } = served
    whenGating(registry, 2, () => gateway.drain()) // the stop begins while version 2 is judged
    const uploaded = await upload(app, 2)
    expect(uploaded.statusCode).toBe(503)
    expect(uploaded.json()).toMatchObject({ code: 'NOT_READY' })
    expect(registry.version('cancer-main', 2)).toMatchObject({ state: 'loading', reason: null })
    await served.stop()
    served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
    await served.registry.idle()
    expect(served.registry.version('cancer-main', 2)).toMatchObject({ state: 'serving' })
    expect(await answeringVersion(served.app)).toBe('2')
  })
})
