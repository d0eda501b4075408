// A restart whose chosen version can no longer serve (its file is damaged, or it fails the gate
// now): the newest earlier version that passed serves instead, and a log line says so; with
// nothing to fall back to, the start fails. A file that changed since it was stored is rejected
// for good; any other failure may be the config or the box: the version stays a candidate
// (not judged before the next start, and no rollback target: a rollback past it retires it).
// And a version older than the serving one, arriving late: gated without serving, so it is a
// rollback target when it passes. And a disk error as the registry starts, the gateway serving
// already: logged, never thrown. A `ready` version whose model file is gone is rejected when the
// registry notices (at start, or a rollback passing over it), not left listed as a rollback
// target. Repositories are laid out on disk as a previous run leaves them (model.onnx + meta.json).
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ConfigError } from '../../src/config/yaml.ts'
import { ModelDirectory } from '../../src/registry/store.ts'
import type { VersionState } from '../../src/registry/version-meta.ts'
import { newMeta } from '../../src/registry/version-rules.ts'
import { ModelVersions } from '../../src/registry/versions.ts'
import type { Logger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const cancer = samples('cancer')
const truth = (JSON.parse(readFileSync(join(models, 'manifest.json'), 'utf8')) as { tasks: { cancer: { truth: number[] } } }).tasks.cancer.truth
const logreg = readFileSync(join(models, 'cancer_logreg.onnx'))
const gbdt = readFileSync(join(models, 'cancer_gbdt.onnx'))
// cancer_mlp gets example 3 wrong: it fails the gate.
const mlp = readFileSync(join(models, 'cancer_mlp.onnx'))

let dir: string
let served: Served | undefined
const lines: { msg: string; obj: Record<string, unknown> }[] = []
const log: Logger = {
  info: (obj, msg) => lines.push({ msg, obj: obj as Record<string, unknown> }),
  warn: (obj, msg) => lines.push({ msg, obj: obj as Record<string, unknown> }),
  error: (obj, msg) => lines.push({ msg, obj: obj as Record<string, unknown> }),
}

/** A repository as a previous run left it: each version's file and meta.json with its state. */
function repository(versions: [version: number, bytes: Buffer, state: VersionState][], policy = 'latest', validation = '{ examples: examples.jsonl }'): string {
  dir = tempDir('specserve-fallback-')
  writeFileSync(join(dir, 'examples.jsonl'), cancer.rows.map((row, i) => JSON.stringify({ inputs: { input: [row] }, outputs: { label: [truth[i]] } })).join('\n'))
  const directory = new ModelDirectory(join(dir, 'repo'), 'cancer-main')
  directory.open()
  for (const [version, bytes, state] of versions) {
    directory.storeSync(bytes, { ...newMeta(version, bytes, 'upload', null), state, serving_since: state === 'serving' ? '2026-01-01T00:00:00.000Z' : null })
  }
  const file = join(dir, 'gateway.yaml')
  writeFileSync(
    file,
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false }
models:
  cancer-main: { kind: onnx, source: repository, version_policy: ${policy}, validation: ${validation} }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main], budget_ms: { default: 5000, max: 10000 } }
`,
  )
  return file
}

/** The examples fixed: only the first, which cancer_mlp gets right, so every version passes the gate. */
function keepOnlyFirstExample(): void {
  writeFileSync(join(dir, 'examples.jsonl'), '{"inputs": {"input": [' + JSON.stringify(cancer.rows[0]) + ']}, "outputs": {"label": [' + String(truth[0]) + ']}}\n')
}

async function servingVersion(): Promise<string | undefined> {
  const res = await served!.app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: [cancer.rows[0]] } } })
  return (res.json() as { models: { version: string }[] }).models[0]?.version
}

const states = async (): Promise<[number, string, string | null][]> =>
  ((await served!.app.inject({ url: '/v1/models/cancer-main/versions' })).json() as { versions: { version: number; state: string; reason: string | null }[] }).versions.map((v) => [v.version, v.state, v.reason])

afterEach(async () => {
  vi.restoreAllMocks()
  await served?.stop()
  served = undefined
  lines.length = 0
})

describe('start falls back when the chosen version cannot serve', () => {
  it('a file damaged since it was stored: the newest earlier version that passed serves, the damaged one is rejected and logged', async () => {
    const file = repository([[1, logreg, 'ready'], [2, gbdt, 'ready'], [3, gbdt, 'serving']])
    writeFileSync(join(dir, 'repo', 'cancer-main', '3', 'model.onnx'), gbdt.subarray(0, 200))
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('2')
    expect(await states()).toEqual([
      [1, 'ready', null],
      [2, 'serving', null],
      [3, 'rejected', expect.stringMatching(/^at start: failed to load.*\(its model file no longer matches the sha256 it was stored with\)$/)],
    ])
    expect(lines).toContainEqual({ msg: 'model version 3 failed at start; falling back to version 2, which passed before', obj: expect.objectContaining({ model: 'cancer-main', version: 3, fallback: 2 }) })
    // Persisted: the next start serves version 2 with no fallback.
    await served.stop()
    lines.length = 0
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('2')
    expect(lines.some((l) => l.msg.includes('falling back'))).toBe(false)
  })

  it('a model file deleted while stopped: the version that served last is rejected as gone, logged, and no rollback target', async () => {
    const file = repository([[1, logreg, 'ready'], [2, gbdt, 'ready'], [3, gbdt, 'serving']])
    rmSync(join(dir, 'repo', 'cancer-main', '3', 'model.onnx'))
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('2')
    expect(await states()).toEqual([
      [1, 'ready', null],
      [2, 'serving', null],
      [3, 'rejected', 'at start: its model file is gone'],
    ])
    expect(lines).toContainEqual({ msg: 'model version 3 rejected at start: its model file is gone', obj: expect.objectContaining({ model: 'cancer-main', version: 3, serving: 2 }) })
    // A rollback goes below the version serving, to 1.
    expect(await served.registry.rollback('cancer-main')).toMatchObject({ version: 1, state: 'serving' })
  })

  it('a model file deleted while stopped, with a newer version never judged: that one is judged and serves, and the start does not fail', async () => {
    const file = repository([[1, logreg, 'serving'], [2, gbdt, 'loading']])
    rmSync(join(dir, 'repo', 'cancer-main', '1', 'model.onnx'))
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('2')
    expect(await states()).toEqual([
      [1, 'rejected', 'at start: its model file is gone'],
      [2, 'serving', null],
    ])
  })

  it('a version that fails its gate now: the earlier passing one serves, and the failed one is tried again at the next start', async () => {
    const file = repository([[1, logreg, 'ready'], [2, mlp, 'serving']])
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('1')
    expect(await states()).toEqual([
      [1, 'serving', null],
      [2, 'ready', expect.stringMatching(/^failed at start: validation gate failed: example 3/)],
    ])
    // The examples are fixed: the next start serves version 2 again.
    await served.stop()
    keepOnlyFirstExample()
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('2')
    expect((await states()).map(([v, state]) => [v, state])).toEqual([[1, 'ready'], [2, 'serving']])
  })

  it('a gate raised by mistake fails the start without making any version unusable: fixed, the version that served last serves', async () => {
    const gate = (minAccuracy: number): string => `{ dataset: { path: ${join(root, 'examples', 'cancer_holdout.csv')}, label: target, min_accuracy: ${minAccuracy} } }`
    repository([[1, logreg, 'ready'], [2, gbdt, 'serving']], 'latest', gate(0.99))
    const file = join(dir, 'gateway.yaml')
    await expect(serveWithRegistry(file, log)).rejects.toThrow(ConfigError)
    expect(lines).toContainEqual({ msg: 'model version 1 failed at start and no earlier version passed: the start fails', obj: expect.objectContaining({ version: 1 }) })
    writeFileSync(file, readFileSync(file, 'utf8').replace('min_accuracy: 0.99', 'min_accuracy: 0.95'))
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('2')
    expect((await states()).map(([v, state]) => [v, state])).toEqual([[1, 'ready'], [2, 'serving']])
  })

  it('a version never judged (loading) that fails at start is not judged right after it: still loading, tried again at the next start', async () => {
    const file = repository([[1, logreg, 'ready'], [2, mlp, 'loading']])
    served = await serveWithRegistry(file, log)
    await served.registry.idle()
    expect(await servingVersion()).toBe('1')
    expect(await states()).toEqual([
      [1, 'serving', null],
      [2, 'loading', expect.stringMatching(/^failed at start: validation gate failed: example 3/)],
    ])
    // A model-stream record replayed for it meanwhile does not get it judged either.
    expect(await served.registry.judgeStored('cancer-main', 2)).toMatchObject({ state: 'loading' })
    await served.stop()
    keepOnlyFirstExample()
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('2')
    expect((await states()).map(([v, state]) => [v, state])).toEqual([[1, 'ready'], [2, 'serving']])
  })

  it('a rollback past a version that failed at start retires it: fixed, the next start still serves the rollback\'s target', async () => {
    const file = repository([[1, logreg, 'ready'], [2, gbdt, 'ready'], [3, mlp, 'serving']])
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('2')
    expect(await served.registry.rollback('cancer-main')).toMatchObject({ version: 1, state: 'serving' })
    expect(await states()).toEqual([
      [1, 'serving', null],
      [2, 'retired', 'rolled back to version 1'],
      [3, 'retired', 'rolled back past it to version 1'],
    ])
    await served.stop()
    keepOnlyFirstExample()
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('1')
  })

  it('under version_policy.specific, falls back only within the listed versions', async () => {
    served = await serveWithRegistry(repository([[1, logreg, 'ready'], [2, gbdt, 'ready'], [3, mlp, 'serving']], '{ specific: [1, 3] }'), log)
    expect(await servingVersion()).toBe('1')
    expect((await states()).map(([v, state]) => [v, state])).toEqual([[1, 'serving'], [2, 'ready'], [3, 'ready']])
  })

  it('with no earlier version that passed, the start fails with the reason', async () => {
    // Version 1 was rejected before: it is no fallback.
    const file = repository([[1, logreg, 'rejected'], [2, gbdt.subarray(0, 200), 'serving']])
    const failure = serveWithRegistry(file, log)
    await expect(failure).rejects.toThrow(ConfigError)
    await expect(failure).rejects.toMatchObject({ issues: [expect.objectContaining({ path: 'models.cancer-main', message: expect.stringMatching(/failed to load/) })] })
    expect(lines).toContainEqual({ msg: 'model version 2 failed at start and no earlier version passed: the start fails', obj: expect.objectContaining({ version: 2 }) })
  })
})

describe('a ready version below the serving one whose model file is gone', () => {
  it('deleted while stopped: rejected at start as gone, logged, and a rollback goes below it', async () => {
    const file = repository([[1, logreg, 'ready'], [2, gbdt, 'ready'], [3, gbdt, 'serving']])
    rmSync(join(dir, 'repo', 'cancer-main', '2', 'model.onnx'))
    served = await serveWithRegistry(file, log)
    expect(await servingVersion()).toBe('3')
    expect(await states()).toEqual([
      [1, 'ready', null],
      [2, 'rejected', 'at start: its model file is gone'],
      [3, 'serving', null],
    ])
    expect(lines).toContainEqual({ msg: 'model version 2 rejected at start: its model file is gone', obj: expect.objectContaining({ model: 'cancer-main', version: 2, serving: 3 }) })
    expect(await served.registry.rollback('cancer-main')).toMatchObject({ version: 1, state: 'serving' })
  })

  it('deleted while the gateway runs: a rollback passes over it and rejects it, logged', async () => {
    const file = repository([[1, logreg, 'ready'], [2, gbdt, 'ready'], [3, gbdt, 'serving']])
    served = await serveWithRegistry(file, log)
    rmSync(join(dir, 'repo', 'cancer-main', '2', 'model.onnx'))
    expect(await served.registry.rollback('cancer-main')).toMatchObject({ version: 1, state: 'serving' })
    expect(await states()).toEqual([
      [1, 'serving', null],
      [2, 'rejected', 'at a rollback: its model file is gone'],
      [3, 'retired', 'rolled back to version 1'],
    ])
    expect(lines).toContainEqual({ msg: 'model version rejected; version 3 keeps serving', obj: expect.objectContaining({ model: 'cancer-main', version: 2, reason: 'at a rollback: its model file is gone' }) })
  })
})

describe('a version older than the serving one arrives', () => {
  it('is gated without serving: a rollback target if it passes, rejected if it fails', async () => {
    served = await serveWithRegistry(repository([[3, logreg, 'serving']]), log)
    expect(await served.registry.arrive('cancer-main', gbdt, { version: 1, source: 'upload' })).toMatchObject({ version: 1, state: 'ready', reason: null, gate: { passed: true } })
    expect(await served.registry.arrive('cancer-main', mlp, { version: 2, source: 'upload' })).toMatchObject({ version: 2, state: 'rejected', reason: expect.stringMatching(/example 3/) })
    // Neither took traffic.
    expect(await servingVersion()).toBe('3')
    expect(served.gateway.reloads).toEqual({ applied: 0, rejected: 0 })
    expect(lines).toContainEqual({ msg: 'older model version passed its gate: kept as a rollback target', obj: expect.objectContaining({ version: 1, serving: 3 }) })
    // The rollback skips the rejected version 2 and lands on 1.
    expect(await served.registry.rollback('cancer-main')).toMatchObject({ version: 1, state: 'serving' })
    expect(await servingVersion()).toBe('1')
  })
})

describe('a disk error as the registry starts (the gateway serves already)', () => {
  it('is logged, never thrown: recording what serves and the rescan fail, the gateway serves on and judges what arrives', async () => {
    const file = repository([[1, logreg, 'ready'], [2, gbdt, 'loading']])
    // Recording version 2 as serving fails once (a full disk), and the rescan cannot read the repository.
    const write = ModelDirectory.prototype.writeMeta
    const failing = vi.spyOn(ModelDirectory.prototype, 'writeMeta').mockImplementation(function (this: ModelDirectory, meta) {
      if (meta.version !== 2 || meta.state !== 'serving') return write.call(this, meta)
      failing.mockRestore()
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
    })
    vi.spyOn(ModelVersions.prototype, 'scanArrivals').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, scandir'), { code: 'EIO' }))
    served = await serveWithRegistry(file, log)
    expect(lines.filter((l) => /failed$/.test(l.msg)).map((l) => [l.msg, l.obj.err])).toEqual([
      ['recording what serves at start failed', expect.objectContaining({ code: 'ENOSPC' })],
      ['repository rescan failed', expect.objectContaining({ code: 'EIO' })],
    ])
    expect(await servingVersion()).toBe('2')
    expect(await served.registry.arrive('cancer-main', logreg, { version: 3, source: 'upload' })).toMatchObject({ version: 3, state: 'serving' })
    expect(await servingVersion()).toBe('3')
  })
})
