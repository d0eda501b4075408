// A version's lifecycle as an operator drives it around a running canary and config reloads:
// a rollback during a canary rolls the canary back; a version older than the canary never
// replaces it; a reload that drops the rollout, or whose version_policy excludes the serving
// version, applies at once and leaves one version serving; a refused reload changes none of the
// registry's settings, and one its version_policy refuses counts as rejected; a version swapped in
// (or in as the canary) whose record failed is recorded serving (or canary) when judged again.
// Real models on a repository laid out as a previous run leaves it.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { reloadFromFile } from '../../src/reload/index.ts'
import { ModelDirectory } from '../../src/registry/store.ts'
import { newMeta } from '../../src/registry/version-rules.ts'
import { silentLogger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const examples = join(root, 'examples')
const cancer = samples('cancer')
// All three pass the data set gate below (accuracy 0.986, 0.958, 0.965 ≥ 0.95).
const logreg = readFileSync(join(models, 'cancer_logreg.onnx'))
const gbdt = readFileSync(join(models, 'cancer_gbdt.onnx'))
const mlp = readFileSync(join(models, 'cancer_mlp.onnx'))

let served: Served | undefined
let file: string

afterEach(async () => {
  await served?.stop()
  served = undefined
})

interface Entry {
  readonly rollout?: boolean
  readonly policy?: string
  /** A second model whose file is not a model: a reload naming it is refused. */
  readonly broken?: boolean
}

function writeConfig({ rollout = false, policy = 'latest', broken = false }: Entry): void {
  writeFileSync(
    file,
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false, keep_versions: 10 }
models:
  cancer-main:
    kind: onnx
    source: repository
    version_policy: ${policy}
    validation: { dataset: { path: ${examples}/cancer_holdout.csv, label: target, min_accuracy: 0.95 } }
${rollout ? '    rollout: { canary: { weight: 0.5, promote_after: 100000 } }\n' : ''}${broken ? `  broken: { kind: onnx, path: ${file} }\n` : ''}ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main], budget_ms: { default: 5000, max: 10000 } }
${broken ? '  broken: { strategy: deadline-fallback, models: [broken] }\n' : ''}`,
  )
}

/** Version 1 served before, version 2 serves. */
async function start(entry: Entry): Promise<Served> {
  const dir = tempDir('specserve-lifecycle-')
  const directory = new ModelDirectory(join(dir, 'repo'), 'cancer-main')
  directory.open()
  directory.storeSync(logreg, { ...newMeta(1, logreg, 'upload', null), state: 'ready', serving_since: '2026-01-01T00:00:00.000Z' })
  directory.storeSync(gbdt, { ...newMeta(2, gbdt, 'upload', null), state: 'serving', serving_since: '2026-01-02T00:00:00.000Z' })
  file = join(dir, 'gateway.yaml')
  writeConfig(entry)
  served = await serveWithRegistry(file, silentLogger)
  return served
}

const upload = async (version: number, bytes: Buffer): Promise<{ status: number; state: string }> => {
  const res = await served!.app.inject({ method: 'PUT', url: `/v1/models/cancer-main/versions/${version}`, headers: { 'content-type': 'application/octet-stream' }, payload: bytes })
  return { status: res.statusCode, state: (res.json() as { version: { state: string } }).version.state }
}

async function reload(entry: Entry): Promise<{ ok: boolean; errors?: string[] }> {
  writeConfig(entry)
  const outcome = await reloadFromFile(served!.gateway, silentLogger)
  await served!.registry.idle() // what the reload queued for the registry (a canary judged again)
  return outcome
}

/** The disk fills up as `version`'s meta.json is written with `state`: that one write fails (ENOSPC). */
function failOnceWriting(version: number, state: string): void {
  const write = ModelDirectory.prototype.writeMeta
  const once = vi.spyOn(ModelDirectory.prototype, 'writeMeta').mockImplementation(function (this: ModelDirectory, meta) {
    if (meta.version === version && meta.state === state) {
      once.mockRestore()
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
    }
    return write.call(this, meta)
  })
}

const states = (): [number, string, string | null][] => served!.registry.list('cancer-main').map((m) => [m.version, m.state, m.reason])

/** The versions that answered ten predicts. */
async function answering(): Promise<string[]> {
  const seen = new Set<string>()
  for (let i = 0; i < 10; i++) {
    const res = await served!.app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: [cancer.rows[i % cancer.rows.length]] } } })
    seen.add((res.json() as { models: { version: string }[] }).models[0]!.version)
  }
  return [...seen].sort()
}

describe('during a canary', () => {
  it('a rollback retires the canary and the serving version serves on; the next rollback goes back as usual', async () => {
    await start({ rollout: true })
    expect(await upload(3, mlp)).toEqual({ status: 202, state: 'canary' })
    const rollback = await served!.app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback' })
    expect(rollback.statusCode).toBe(200)
    expect(rollback.json()).toMatchObject({ serving: 2, version: { version: 2, state: 'serving' } })
    expect(states()).toEqual([
      [1, 'ready', null],
      [2, 'serving', null],
      [3, 'retired', 'rolled back during its canary; version 2 serves on'],
    ])
    expect(served!.registry.version('cancer-main', 3).rollout).toMatchObject({ decision: 'rolled_back' })
    expect(await answering()).toEqual(['2'])
    expect((await served!.app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback' })).json()).toMatchObject({ serving: 1 })
    expect(served!.registry.version('cancer-main', 2)).toMatchObject({ state: 'retired', reason: 'rolled back to version 1' })
  })

  it('a version older than the canary is gated without serving and leaves the canary running', async () => {
    await start({ rollout: true })
    expect(await upload(5, mlp)).toEqual({ status: 202, state: 'canary' })
    expect(await upload(4, logreg)).toEqual({ status: 200, state: 'ready' })
    expect(states().map(([v, state]) => [v, state])).toEqual([[1, 'ready'], [2, 'serving'], [4, 'ready'], [5, 'canary']])
    expect((await served!.app.inject('/v1/models/cancer-main')).json()).toMatchObject({ canary: { version: '5' } })
  })

  it('a reload that removes the rollout judges the canary again at once: it serves, and one version serves', async () => {
    await start({ rollout: true })
    expect(await upload(3, mlp)).toEqual({ status: 202, state: 'canary' })
    expect(await reload({ rollout: false })).toMatchObject({ ok: true })
    expect(states().map(([v, state]) => [v, state])).toEqual([[1, 'ready'], [2, 'ready'], [3, 'serving']])
    expect(served!.registry.serving('cancer-main')).toBe(3)
    expect(await answering()).toEqual(['3'])
  })

  it('a reload whose version_policy excludes the canary ends it at once: the canary is retired, the serving version serves alone', async () => {
    await start({ rollout: true })
    expect(await upload(3, mlp)).toEqual({ status: 202, state: 'canary' })
    expect(await reload({ rollout: true, policy: '{ specific: [1, 2] }' })).toMatchObject({ ok: true })
    expect(states()).toEqual([
      [1, 'ready', null],
      [2, 'serving', null],
      [3, 'retired', 'not in version_policy.specific'],
    ])
    expect(await answering()).toEqual(['2'])
  })
})

describe('a config reload', () => {
  it('whose version_policy excludes the serving version serves the highest passing one it allows at once, and across a restart', async () => {
    await start({})
    expect(await reload({ policy: '{ specific: [1] }' })).toMatchObject({ ok: true })
    expect(await answering()).toEqual(['1'])
    expect(served!.registry.serving('cancer-main')).toBe(1)
    expect(states().map(([v, state]) => [v, state])).toEqual([[1, 'serving'], [2, 'ready']])
    // Nothing that passed is allowed: refused, and version 1 serves on.
    const refused = await reload({ policy: '{ specific: [7] }' })
    expect(refused).toMatchObject({ ok: false, errors: [expect.stringMatching(/models\.cancer-main\.version_policy: allows neither the serving version 1 nor any other that passed/)] })
    expect(await answering()).toEqual(['1'])
    writeConfig({ policy: '{ specific: [1] }' })
    await served!.stop()
    served = await serveWithRegistry(file, silentLogger)
    expect(await answering()).toEqual(['1'])
    expect(states().filter(([, state]) => state === 'serving')).toEqual([[1, 'serving', null]])
  })

  it('that is refused changes none of the registry settings it carried: the next good version serves', async () => {
    await start({})
    expect(await reload({ policy: '{ specific: [1] }', broken: true })).toMatchObject({ ok: false })
    expect(await upload(3, mlp)).toEqual({ status: 201, state: 'serving' })
    expect(await reload({ rollout: true, broken: true })).toMatchObject({ ok: false })
    expect(await upload(4, logreg)).toEqual({ status: 201, state: 'serving' })
    expect(await answering()).toEqual(['4'])
  })

  it('refused by its version_policy counts as a rejected reload, and is answered NOT_READY while the gateway drains', async () => {
    await start({})
    expect(await reload({ policy: '{ specific: [7] }' })).toMatchObject({ ok: false, code: 'CONFIG_INVALID' })
    expect(served!.gateway.reloads).toEqual({ applied: 0, rejected: 1 })
    served!.gateway.drain()
    expect(await reload({ policy: '{ specific: [7] }' })).toMatchObject({ ok: false, code: 'NOT_READY' })
  })
})

describe('a version swapped in whose record could not be written (a full disk)', () => {
  it('is recorded as serving when judged again, not retired as "not newer than the serving version"', async () => {
    await start({})
    failOnceWriting(3, 'serving')
    const failed = await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/3', headers: { 'content-type': 'application/octet-stream' }, payload: mlp })
    expect(failed.statusCode).toBe(500)
    expect(served!.registry.serving('cancer-main')).toBe(3)
    expect(served!.registry.version('cancer-main', 3).state).toBe('loading')
    // What the model stream does with a replay of that record (src/registry/stream.ts).
    expect(await served!.registry.judgeStored('cancer-main', 3)).toMatchObject({ version: 3, state: 'serving' })
    expect(states().map(([v, state]) => [v, state])).toEqual([[1, 'ready'], [2, 'ready'], [3, 'serving']])
    expect(await answering()).toEqual(['3'])
  })

  it('as the canary is recorded as the canary when judged again, not retired as "not newer than the canary version"', async () => {
    await start({ rollout: true })
    failOnceWriting(3, 'canary')
    const failed = await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/3', headers: { 'content-type': 'application/octet-stream' }, payload: mlp })
    expect(failed.statusCode).toBe(500)
    expect(served!.registry.version('cancer-main', 3).state).toBe('loading')
    expect(await served!.registry.judgeStored('cancer-main', 3)).toMatchObject({ version: 3, state: 'canary' })
    expect(states().map(([v, state]) => [v, state])).toEqual([[1, 'ready'], [2, 'serving'], [3, 'canary']])
    expect((await served!.app.inject('/v1/models/cancer-main')).json()).toMatchObject({ canary: { version: '3' } })
  })
})
