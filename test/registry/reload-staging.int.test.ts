// A config reload that is refused leaves the registry and its repository as they were: a
// repository model it added is neither listed nor on disk (an upload for it made meanwhile
// waits, also through a next reload adding it again, and is answered 404; a model-stream
// record replaying its seed is a duplicate; a version an operator copied into its new
// directory stays), and the gate it ran under its own validation
// is not written over any version's report. Once a
// reload that adds a repository model is swapped in, that model's version is recorded serving,
// as at a start, and a disk failing then is logged, not a failed reload. A repository model's
// name must be a directory name, at start and in a reload.
// Real models on a repository laid out as a previous run leaves it.
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Consumer } from '@platformatic/kafka'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { encodeDescriptor } from '../../src/registry/descriptor.ts'
import { SwapOutdated } from '../../src/registry/resolve.ts'
import { ModelStream, type Raw } from '../../src/registry/stream.ts'
import { reloadFromFile } from '../../src/reload/index.ts'
import { ModelDirectory } from '../../src/registry/store.ts'
import { newMeta } from '../../src/registry/version-rules.ts'
import { ModelVersions } from '../../src/registry/versions.ts'
import { silentLogger, type Logger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const examples = join(root, 'examples')
const cancer = samples('cancer')
// Against the data set gate below: logreg 0.986, gbdt 0.958.
const logreg = readFileSync(join(models, 'cancer_logreg.onnx'))
const gbdt = readFileSync(join(models, 'cancer_gbdt.onnx'))

let served: Served | undefined
let dir: string
let file: string

afterEach(async () => {
  vi.restoreAllMocks() // a spy on ModelVersions.open that never saw its model
  await served?.stop()
  served = undefined
})

interface Entry {
  /** The accuracy cancer-main's gate asks for. */
  readonly minAccuracy?: number
  /** Adds the repository model cancer-extra (seeded from the logreg file) and an ensemble on it. */
  readonly extra?: boolean
  /** cancer-extra's gate: the accuracy it asks for. */
  readonly extraAccuracy?: number
  /** Another name for cancer-extra. */
  readonly extraName?: string
  /** Adds a model whose file is not a model: the reload is refused. */
  readonly broken?: boolean
}

function writeConfig({ minAccuracy = 0.95, extra = false, extraAccuracy = 0.5, extraName = 'cancer-extra', broken = false }: Entry): void {
  const gateAt = (accuracy: number): string => `validation: { dataset: { path: ${examples}/cancer_holdout.csv, label: target, min_accuracy: ${accuracy} } }`
  const gate = gateAt(minAccuracy)
  writeFileSync(
    file,
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false, keep_versions: 10 }
models:
  cancer-main: { kind: onnx, source: repository, ${gate} }
${extra ? `  "${extraName}": { kind: onnx, source: repository, path: ${join(models, 'cancer_logreg.onnx')}, ${gateAt(extraAccuracy)} }\n` : ''}${broken ? `  broken: { kind: onnx, path: ${file} }\n` : ''}ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main], budget_ms: { default: 5000, max: 10000 } }
${extra ? `  extra: { strategy: deadline-fallback, models: ["${extraName}"], budget_ms: { default: 5000, max: 10000 } }\n` : ''}${broken ? '  broken: { strategy: deadline-fallback, models: [broken] }\n' : ''}`,
  )
}

/** Version 1 served before, version 2 (gbdt) serves. */
async function start(log: Logger = silentLogger): Promise<Served> {
  dir = tempDir('specserve-reload-staging-')
  const directory = new ModelDirectory(join(dir, 'repo'), 'cancer-main')
  directory.open()
  directory.storeSync(logreg, { ...newMeta(1, logreg, 'upload', null), state: 'ready', serving_since: '2026-01-01T00:00:00.000Z' })
  directory.storeSync(gbdt, { ...newMeta(2, gbdt, 'upload', null), state: 'serving', serving_since: '2026-01-02T00:00:00.000Z' })
  file = join(dir, 'gateway.yaml')
  writeConfig({})
  served = await serveWithRegistry(file, log)
  return served
}

async function reload(entry: Entry): Promise<{ ok: boolean; errors?: string[] }> {
  writeConfig(entry)
  const outcome = await reloadFromFile(served!.gateway, silentLogger)
  await served!.registry.idle()
  return outcome
}

const versionsOf = (model: string): Promise<{ status: number; body: { code?: string; versions?: { version: number; state: string; source: string }[] } }> =>
  served!.app.inject({ method: 'GET', url: `/v1/models/${model}/versions` }).then((res) => ({ status: res.statusCode, body: res.json() }))

describe('a refused config reload', () => {
  it('that adds a repository model leaves no trace of it: not listed, nothing in the repository', async () => {
    await start()
    expect(await reload({ extra: true, broken: true })).toMatchObject({ ok: false })
    expect(served!.registry.isRepositoryModel('cancer-extra')).toBe(false)
    expect(await versionsOf('cancer-extra')).toMatchObject({ status: 404, body: { code: 'UNKNOWN_ENSEMBLE' } })
    expect(readdirSync(join(dir, 'repo'))).toEqual(['cancer-main'])
  })

  it('that adds the first repository model takes back the repository directory it created for it', async () => {
    dir = tempDir('specserve-reload-staging-')
    file = join(dir, 'gateway.yaml')
    const plain = `
repository: { path: ./store/repo, watch: false }
models:
  cancer-plain: { kind: onnx, path: ${join(models, 'cancer_logreg.onnx')} }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-plain] }
`
    writeFileSync(file, plain)
    served = await serveWithRegistry(file, silentLogger)
    expect(existsSync(join(dir, 'store'))).toBe(false)
    writeFileSync(file, `${plain}  extra: { strategy: deadline-fallback, models: [cancer-extra] }
  broken: { strategy: deadline-fallback, models: [broken] }
`.replace('models:\n', `models:\n  cancer-extra: { kind: onnx, source: repository, path: ${join(models, 'cancer_logreg.onnx')} }\n  broken: { kind: onnx, path: ${file} }\n`))
    expect(await reloadFromFile(served.gateway, silentLogger)).toMatchObject({ ok: false })
    expect(readdirSync(dir)).toEqual(['gateway.yaml'])
  })

  it('that adds a repository model whose directory is there and empty takes back the seed it imported', async () => {
    await start()
    mkdirSync(join(dir, 'repo', 'cancer-extra'))
    expect(await reload({ extra: true, broken: true })).toMatchObject({ ok: false })
    expect(readdirSync(join(dir, 'repo', 'cancer-extra'))).toEqual([])
  })

  it('that adds a repository model whose directory holds versions leaves them, and their reports, as they were', async () => {
    await start()
    const directory = new ModelDirectory(join(dir, 'repo'), 'cancer-extra')
    directory.open()
    directory.storeSync(logreg, { ...newMeta(1, logreg, 'upload', null), state: 'serving', serving_since: '2026-01-01T00:00:00.000Z' })
    const before = readFileSync(join(directory.dir, '1', 'meta.json'), 'utf8')
    // logreg's 0.986 is under this gate: the reload is refused by cancer-extra's own gate.
    expect(await reload({ extra: true, extraAccuracy: 0.99 })).toMatchObject({ ok: false })
    expect(readFileSync(join(directory.dir, '1', 'meta.json'), 'utf8')).toBe(before)
    expect(directory.hasModel(1)).toBe(true)
  })

  it('refused by its own gate leaves the serving version\'s gate report as it was', async () => {
    await start()
    const gate = (): unknown => served!.registry.version('cancer-main', 2).gate
    expect(gate()).toMatchObject({ passed: true, dataset: { min_accuracy: 0.95 } })
    expect(await reload({ minAccuracy: 0.99 })).toMatchObject({ ok: false })
    expect(gate()).toMatchObject({ passed: true, dataset: { min_accuracy: 0.95 } })
    // Swapped in, a reload's gate report is the one recorded.
    expect(await reload({ minAccuracy: 0.9 })).toMatchObject({ ok: true })
    expect(gate()).toMatchObject({ passed: true, dataset: { min_accuracy: 0.9 } })
  })
})

describe('a source: repository model whose name is not a directory name', () => {
  it('is refused by a reload, and nothing is made outside the repository', async () => {
    await start()
    const outcome = await reload({ extra: true, extraName: '../escaped' })
    expect(outcome).toMatchObject({ ok: false, errors: [expect.stringMatching(/models\.\.\.\/escaped\.source: a source: repository model's name is its directory in the repository/)] })
    expect(existsSync(join(dir, 'escaped'))).toBe(false)
  })

  it('is refused at start', async () => {
    dir = tempDir('specserve-reload-staging-')
    file = join(dir, 'gateway.yaml')
    writeConfig({ extra: true, extraName: 'a/b' })
    const nameIssue = { path: 'models.a/b.source', message: expect.stringMatching(/^a source: repository model's name is its directory in the repository: "a\/b" cannot be one/) }
    await expect(serveWithRegistry(file, silentLogger)).rejects.toMatchObject({ issues: expect.arrayContaining([expect.objectContaining(nameIssue)]) })
    expect(existsSync(join(dir, 'repo', 'a'))).toBe(false)
  })
})

describe('a config reload that adds a repository model', () => {
  /** Runs `act` as soon as the reload has opened cancer-extra, while it loads; resolves with what it resolves with. */
  function whileAdding<T>(act: () => Promise<T>): Promise<T> {
    const open = ModelVersions.prototype.open
    return new Promise((resolve, reject) => {
      const spy = vi.spyOn(ModelVersions.prototype, 'open').mockImplementation(function (this: ModelVersions, seed) {
        open.call(this, seed)
        if (this.name !== 'cancer-extra') return
        spy.mockRestore()
        expect(served!.registry.isRepositoryModel('cancer-extra')).toBe(true) // staged: loaded and gated with the reload
        act().then(resolve, reject)
      })
    })
  }

  /** Uploads version 2 of cancer-extra while the reload adding it loads. */
  const uploadWhileAdding = (): Promise<{ status: number; body: { code?: string; version?: { state: string } } }> =>
    whileAdding(() =>
      served!.app
        .inject({ method: 'PUT', url: '/v1/models/cancer-extra/versions/2', headers: { 'content-type': 'application/octet-stream' }, payload: gbdt })
        .then((res) => ({ status: res.statusCode, body: res.json() })),
    )

  it('skips a model-stream record replaying its seed, received while it loads, as a version already stored', async () => {
    await start()
    vi.spyOn(Consumer.prototype, 'commit').mockResolvedValue(undefined as never) // no broker: the record's commit
    vi.spyOn(Consumer.prototype, 'isActive').mockReturnValue(true)
    const kafka = { brokers: ['127.0.0.1:1'], topic: 'models', group: 'g', catchUpTimeoutMs: 0 }
    const stream = new ModelStream(served!.registry, { ...served!.registry.repository, kafka }, 'test', silentLogger)
    const value = Buffer.from(encodeDescriptor({ name: 'cancer-extra', version: 0, description: '', modelType: 'onnx', payload: { kind: 'data', data: logreg }, sha256: '' }))
    const outcome = whileAdding(() => {
      const judged = once(stream, 'record')
      stream.receive({ key: 'cancer-extra', value, topic: 'models', partition: 0, offset: 0n, leaderEpoch: 0 } as unknown as Raw)
      return judged
    })
    try {
      expect(await reload({ extra: true })).toMatchObject({ ok: true })
      expect(await outcome).toEqual(['duplicate', 'cancer-extra', null])
    } finally {
      await stream.close()
    }
    expect(await versionsOf('cancer-extra')).toMatchObject({ status: 200, body: { versions: [{ version: 1, state: 'serving', source: 'seed' }] } })
  })

  it('takes an upload for it made while it loads once it is swapped in', async () => {
    await start()
    const uploaded = uploadWhileAdding()
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    expect(await uploaded).toMatchObject({ status: 201, body: { version: { state: 'serving' } } })
  })

  it('that is refused answers an upload made while it loaded 404, and stores nothing', async () => {
    await start()
    const uploaded = uploadWhileAdding()
    expect(await reload({ extra: true, broken: true })).toMatchObject({ ok: false })
    expect(await uploaded).toMatchObject({ status: 404, body: { code: 'UNKNOWN_ENSEMBLE' } })
    expect(existsSync(join(dir, 'repo', 'cancer-extra'))).toBe(false)
  })

  it('that is refused takes back only its seed from the directory it created: a version an operator copied in meanwhile stays', async () => {
    await start()
    const extra = join(dir, 'repo', 'cancer-extra')
    const copied = whileAdding(async () => {
      mkdirSync(join(extra, '3'))
      writeFileSync(join(extra, '3', 'model.onnx'), gbdt)
    })
    expect(await reload({ extra: true, broken: true })).toMatchObject({ ok: false })
    await copied
    expect(readdirSync(extra)).toEqual(['3'])
    expect(readFileSync(join(extra, '3', 'model.onnx'))).toEqual(gbdt)
    // The next reload adding the model finds it (and imports no seed beside it), and judges it.
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    expect(await versionsOf('cancer-extra')).toMatchObject({ status: 200, body: { versions: [{ version: 3, state: 'serving', source: 'directory' }] } })
  })

  it('a stored version is found by its bytes\' sha256 under the version a model-stream record names, not the lowest with those bytes', async () => {
    await start()
    const upload = await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/3', headers: { 'content-type': 'application/octet-stream' }, payload: gbdt })
    expect(upload.statusCode).toBe(201) // version 2's bytes again, as version 3
    const sha = createHash('sha256').update(gbdt).digest('hex')
    expect([await served!.registry.versionWithSha('cancer-main', sha, 3), await served!.registry.versionWithSha('cancer-main', sha, 0), await served!.registry.versionWithSha('cancer-main', sha, 4)]).toEqual([3, 2, undefined])
  })

  it('a swap the config outdated while it waited (a reload narrowed the policy first) gives no verdict: the version stays loading, the upload is told to try again, and the retry judges it', async () => {
    await start()
    // The race itself (a reload committing between the judging and the swap) is the resolver's to see: here it says so.
    vi.spyOn(served!.gateway, 'swapVersions').mockRejectedValueOnce(new SwapOutdated(file, [{ path: 'models.cancer-main.version_policy', message: 'version 3 is not in version_policy.specific' }]))
    const upload = await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/3', headers: { 'content-type': 'application/octet-stream' }, payload: logreg })
    expect([upload.statusCode, upload.json().code]).toEqual([503, 'NOT_READY'])
    expect(upload.json().message).toMatch(/the config being served changed while this waited \(models\.cancer-main\.version_policy: version 3 is not in version_policy\.specific\)/)
    expect(served!.registry.version('cancer-main', 3)).toMatchObject({ state: 'loading' })
    // The retry it was told to make, with the same bytes, judges it (it was refused VERSION_EXISTS); other bytes are still refused.
    const other = await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/3', headers: { 'content-type': 'application/octet-stream' }, payload: gbdt })
    expect([other.statusCode, other.json().code]).toEqual([409, 'VERSION_EXISTS'])
    const retry = await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/3', headers: { 'content-type': 'application/octet-stream' }, payload: logreg })
    expect(retry.statusCode, retry.body).toBe(201)
    expect(retry.json()).toMatchObject({ model: 'cancer-main', version: { version: 3, state: 'serving', source: 'upload' } })
    expect(served!.registry.version('cancer-main', 3)).toMatchObject({ state: 'serving' })
  })

  it('and dropped by a later reload is the registry\'s no more: an upload for it is 404, and nothing is stored or recorded serving', async () => {
    await start()
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    expect(await reload({})).toMatchObject({ ok: true })
    expect(served!.registry.isRepositoryModel('cancer-extra')).toBe(false)
    const upload = await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-extra/versions/9', headers: { 'content-type': 'application/octet-stream' }, payload: gbdt })
    expect([upload.statusCode, upload.json().code]).toEqual([404, 'UNKNOWN_ENSEMBLE'])
    expect(readdirSync(join(dir, 'repo', 'cancer-extra'))).toEqual(['1'])
    expect(await versionsOf('cancer-extra')).toMatchObject({ status: 404 })
  })

  it('is swapped in and serves even when the rescan of its directory fails on a disk error, which is logged', async () => {
    const errors: string[] = []
    await start({ ...silentLogger, error: (_obj, msg) => void errors.push(msg) })
    // Once the reload is swapped in, its directory is scanned for versions copied in meanwhile: that fails.
    const scanArrivals = ModelVersions.prototype.scanArrivals
    vi.spyOn(ModelVersions.prototype, 'scanArrivals').mockImplementation(function (this: ModelVersions, failed) {
      if (this.name === 'cancer-extra') return Promise.reject(Object.assign(new Error('EIO: i/o error, scandir'), { code: 'EIO' }))
      return scanArrivals.call(this, failed)
    })
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    await vi.waitFor(() => expect(errors).toEqual(['repository rescan failed']))
    expect(await versionsOf('cancer-extra')).toMatchObject({ status: 200, body: { versions: [{ version: 1, state: 'serving' }] } })
    const res = await served!.app.inject({ method: 'POST', url: '/v1/ensembles/extra/predict', payload: { inputs: { input: [cancer.rows[0]] } } })
    expect(res.json()).toMatchObject({ models: [{ name: 'cancer-extra', version: '1' }] })
  })

  it('keeps an upload made while it loads waiting through a next reload that adds it again before the upload resumes', async () => {
    await start()
    writeConfig({ extra: true })
    const config = loadConfigFile(file)
    const registry = served!.registry
    // The gateway's side of two reloads, the first dropped unreported: the second's staging opens cancer-extra again in the same turn.
    registry.resolve(config, {})
    let outcome: string | undefined
    const uploaded = registry.arrive('cancer-extra', gbdt, { version: 2, source: 'upload' }).then(
      (meta) => (outcome = `stored ${meta.version}`),
      (err: { code?: string }) => (outcome = err.code),
    )
    registry.resolve(config, {})
    expect(registry.isRepositoryModel('cancer-extra')).toBe(true)
    // Turns for the upload to resume: it waits on the second reload, which has not settled.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(outcome).toBeUndefined()
    expect(existsSync(join(dir, 'repo', 'cancer-extra', '2'))).toBe(false)
    registry.discarded()
    await uploaded
    expect(outcome).toBe('UNKNOWN_ENSEMBLE')
    expect(existsSync(join(dir, 'repo', 'cancer-extra'))).toBe(false)
  })

  it('dropped by a reload and added again is one record: a version number an upload still being stored holds is not given out twice', async () => {
    await start()
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    const registry = served!.registry
    const numberOf = (upload: Promise<{ version: number }>) => upload.then((meta) => meta.version, (err: { code?: string }) => err.code)
    // Hashed a slice (1 MiB) a turn: still being stored while the reloads below run.
    const first = numberOf(registry.arrive('cancer-extra', Buffer.concat([gbdt, Buffer.alloc(3 << 20)]), { version: 0, source: 'upload' }))
    await new Promise((resolve) => setImmediate(resolve)) // its number taken, its hashing under way
    // The gateway's side of two reloads: cancer-extra dropped, then added again.
    for (const extra of [false, true]) {
      writeConfig({ extra })
      const config = loadConfigFile(file)
      registry.resolve(config, {})
      registry.committed(config)
    }
    const second = numberOf(registry.arrive('cancer-extra', gbdt, { version: 0, source: 'upload' }))
    expect(await Promise.all([first, second])).toEqual([2, 3])
    await registry.idle()
  })

  it('dropped and added again, keeps the uploads still being written in its directory and takes a version copied in meanwhile as an arrival', async () => {
    await start()
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    expect(await reload({})).toMatchObject({ ok: true })
    const model = join(dir, 'repo', 'cancer-extra')
    mkdirSync(join(model, '.incoming-7-abcd'))
    writeFileSync(join(model, '.incoming-7-abcd', 'model.onnx'), gbdt.subarray(0, 100)) // an upload being written
    mkdirSync(join(model, '5'))
    writeFileSync(join(model, '5', 'model.onnx'), gbdt)
    const foreign = { ...newMeta(5, Buffer.from('another file'), 'upload', 'copied from staging'), state: 'ready' }
    writeFileSync(join(model, '5', 'meta.json'), JSON.stringify(foreign))
    const judged = new Promise<unknown>((resolve) => served!.registry.on('settled', (name, meta) => name === 'cancer-extra' && meta.version === 5 && resolve(meta)))
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    expect(existsSync(join(model, '.incoming-7-abcd', 'model.onnx'))).toBe(true)
    expect(await judged).toMatchObject({ version: 5, state: 'serving', source: 'directory', description: 'copied from staging', sha256: createHash('sha256').update(gbdt).digest('hex') })
  })

  it('dropped, its directory removed, and added again: imports its path: as version 1 again and takes uploads', async () => {
    await start()
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    expect(await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-extra/versions/2', headers: { 'content-type': 'application/octet-stream' }, payload: gbdt })).toMatchObject({ statusCode: 201 })
    expect(await reload({})).toMatchObject({ ok: true })
    rmSync(join(dir, 'repo', 'cancer-extra'), { recursive: true }) // an operator's clean-up
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    expect(await versionsOf('cancer-extra')).toMatchObject({ status: 200, body: { versions: [{ version: 1, state: 'serving', source: 'seed' }] } })
    const upload = await served!.app.inject({ method: 'PUT', url: '/v1/models/cancer-extra/versions/2', headers: { 'content-type': 'application/octet-stream' }, payload: gbdt })
    expect(upload.statusCode).toBe(201)
  })

  it('records the seed it imported as the version serving, after one that was refused', async () => {
    await start()
    expect(await reload({ extra: true, broken: true })).toMatchObject({ ok: false })
    expect(await reload({ extra: true })).toMatchObject({ ok: true })
    expect(existsSync(join(dir, 'repo', 'cancer-extra', '1', 'model.onnx'))).toBe(true)
    expect(await versionsOf('cancer-extra')).toMatchObject({ status: 200, body: { versions: [{ version: 1, state: 'serving', source: 'seed' }] } })
    const res = await served!.app.inject({ method: 'POST', url: '/v1/ensembles/extra/predict', payload: { inputs: { input: [cancer.rows[0]] } } })
    expect(res.json()).toMatchObject({ models: [{ name: 'cancer-extra', version: '1' }] })
  })
})
