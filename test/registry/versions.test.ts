// One model's versions on disk: which one a start serves, what version_policy lets serve,
// rollback's target, keep_versions, what a crash in the middle of a store leaves, and what a
// version that failed at start becomes (a candidate still, unless its file is damaged).
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { RepositoryModelSettings } from '../../src/registry/config.ts'
import { MAX_VERSION } from '../../src/registry/version-meta.ts'
import { ModelDirectory } from '../../src/registry/store.ts'
import { MOVED_IN_MS } from '../../src/registry/copy-in.ts'
import { ModelVersions } from '../../src/registry/versions.ts'
import { tempDir } from '../temp-dirs.ts'

let repo: string
const latest: RepositoryModelSettings = { policy: { kind: 'latest' }, validation: { examples: undefined, dataset: undefined }, seed: undefined, canary: undefined }
const bytes = (n: number): Buffer => Buffer.from(`model ${n}`)
/** A scan's failure to record a version, where none is expected: the test fails with it. */
const unexpected = (_version: number, err: unknown): never => {
  throw err
}

/** A model file whose copy ended a while ago (MOVED_IN_MS): a scan takes it at once (copy-in.test.ts: one still being written). */
function copiedIn(file: string, data: string | Buffer): void {
  writeFileSync(file, data)
  const ended = (Date.now() - MOVED_IN_MS) / 1000
  utimesSync(file, ended, ended)
}

function opened(settings = latest): ModelVersions {
  const versions = new ModelVersions(repo, 'm', settings)
  versions.open(() => undefined)
  return versions
}

beforeEach(() => {
  repo = tempDir('specserve-versions-')
})

afterEach(() => {
  vi.restoreAllMocks()
})

describe('ModelVersions', () => {
  it('serves, after a restart, the version that served last, even when a higher one passed', async () => {
    const first = opened()
    for (const v of [1, 2, 3]) await first.add(bytes(v), { version: v, source: 'upload' })
    first.update(3, { state: 'ready' })
    first.update(2, { state: 'serving', serving_since: '2026-01-01T00:00:00.000Z' })
    first.update(1, { state: 'ready' })
    expect(opened().serving).toBe(2)
  })

  it('with no version that served, picks the highest the policy allows that was never rejected', async () => {
    const first = opened({ ...latest, policy: { kind: 'specific', versions: [1, 2] } })
    for (const v of [1, 2, 3]) await first.add(bytes(v), { version: v, source: 'upload' })
    expect(opened({ ...latest, policy: { kind: 'specific', versions: [1, 2] } }).serving).toBe(2)
    first.update(2, { state: 'rejected', reason: 'gate' })
    const again = opened({ ...latest, policy: { kind: 'specific', versions: [1, 2] } })
    expect(again.serving).toBe(1)
    expect(again.judge(3)).toEqual({ serve: false, gate: false, reason: 'not in version_policy.specific' })
    expect(again.judge(2)).toEqual({ serve: true })
    expect(opened().judge(1)).toEqual({ serve: false, gate: true, reason: 'not newer than the serving version 3' })
  })

  it('at start, a canary cut short and a version stored but never judged are judged again', async () => {
    const first = opened()
    for (const v of [1, 2, 3]) await first.add(bytes(v), { version: v, source: 'upload' })
    first.update(1, { state: 'serving', serving_since: '2026-01-01T00:00:00.000Z' })
    first.update(2, { state: 'canary' })
    const again = opened()
    expect(again.serving).toBe(1)
    expect(again.get(2)?.state).toBe('loading')
    expect(again.pending()).toEqual([2, 3])
  })

  it('numbers a version 0 as the next after the highest known, and refuses an existing one', async () => {
    const versions = opened()
    await versions.add(bytes(4), { version: 4, source: 'kafka' })
    expect((await versions.add(bytes(5), { version: 0, source: 'kafka' })).version).toBe(5)
    await expect(versions.add(bytes(5), { version: 5, source: 'upload' })).rejects.toThrow(/version 5 exists already/)
  })

  it('rolls back to the highest passing version below the serving one, never to a rejected or retired one', async () => {
    const versions = opened()
    for (const v of [1, 2, 3, 4]) await versions.add(bytes(v), { version: v, source: 'upload' })
    versions.update(1, { state: 'ready' })
    versions.update(2, { state: 'retired' })
    versions.update(3, { state: 'rejected' })
    versions.update(4, { state: 'serving' })
    versions.serving = 4
    expect(versions.previous()).toBe(1)
    versions.serving = 1
    expect(versions.previous()).toBeUndefined()
  })

  it('keeps the model files of keep_versions passing versions; older ones are retired, their meta kept', async () => {
    const versions = opened()
    for (const v of [1, 2, 3, 4]) await versions.add(bytes(v), { version: v, source: 'upload' })
    for (const v of [1, 2, 3]) versions.update(v, { state: 'ready' })
    versions.update(4, { state: 'serving' })
    versions.serving = 4
    expect(versions.prune(2)).toEqual([2, 1])
    expect(versions.list().map((m) => [m.version, m.state])).toEqual([[1, 'retired'], [2, 'retired'], [3, 'ready'], [4, 'serving']])
    expect(existsSync(versions.directory.modelFile(2))).toBe(false)
    expect(versions.previous()).toBe(3)
  })

  it('removes a store a crash cut short, and skips a directory whose model is not there yet', async () => {
    const dir = join(repo, 'm')
    mkdirSync(join(dir, '.incoming-7-abcd'), { recursive: true })
    writeFileSync(join(dir, '.incoming-7-abcd', 'model.onnx'), 'half a mod')
    mkdirSync(join(dir, '8'))
    const versions = opened()
    expect(readdirSync(dir).sort()).toEqual(['8'])
    expect(versions.list()).toEqual([])
    expect(versions.serving).toBeUndefined()
    copiedIn(join(dir, '8', 'model.onnx'), 'copied in')
    expect(await versions.scanArrivals(unexpected)).toEqual([8])
    expect(versions.get(8)).toMatchObject({ state: 'loading', source: 'directory', size_bytes: 9 })
  })

  it('takes a version copied in with a meta.json of its own as an arrival: its state, gate and sha256 are found here, its description kept', async () => {
    const versions = opened()
    await versions.add(bytes(1), { version: 1, source: 'upload' })
    const copied = join(repo, 'm', '5')
    mkdirSync(copied)
    copiedIn(join(copied, 'model.onnx'), bytes(5))
    const foreign = { version: 5, state: 'serving', source: 'upload', sha256: '0'.repeat(64), size_bytes: 1, description: 'from staging', created_at: '2020-01-01T00:00:00.000Z', serving_since: '2020-01-01T00:00:00.000Z', reason: null, gate: { passed: true, reason: null, examples: null, dataset: null } }
    writeFileSync(join(copied, 'meta.json'), JSON.stringify(foreign))
    expect(await versions.scanArrivals(unexpected)).toEqual([5])
    expect(versions.get(5)).toMatchObject({ state: 'loading', source: 'directory', sha256: createHash('sha256').update(bytes(5)).digest('hex'), size_bytes: bytes(5).length, description: 'from staging', serving_since: null, gate: null })
    expect(JSON.parse(readFileSync(join(copied, 'meta.json'), 'utf8'))).toMatchObject({ state: 'loading', source: 'directory' })
    expect(await versions.scanArrivals(unexpected)).toEqual([])
  })

  it('skips a version copied in whose meta.json cannot be written (EACCES), reports it, takes the versions after it, and takes it at the next scan', async () => {
    const versions = opened()
    for (const v of [3, 4]) {
      mkdirSync(join(repo, 'm', String(v)))
      copiedIn(join(repo, 'm', String(v), 'model.onnx'), bytes(v))
    }
    vi.spyOn(ModelDirectory.prototype, 'writeMeta').mockImplementationOnce(() => {
      throw Object.assign(new Error('EACCES: permission denied, open'), { code: 'EACCES' })
    })
    const failed: [number, unknown][] = []
    expect(await versions.scanArrivals((version, err) => failed.push([version, err]))).toEqual([4])
    expect(failed).toEqual([[3, expect.objectContaining({ code: 'EACCES' })]])
    expect(versions.get(3)).toBeUndefined()
    expect(await versions.scanArrivals(unexpected)).toEqual([3])
    expect(versions.list().map((m) => [m.version, m.state])).toEqual([[3, 'loading'], [4, 'loading']])
  })

  it('keeps the highest version a number can name (2^53 - 1) across a restart, and ignores a directory beyond it', async () => {
    const first = opened()
    await first.add(bytes(1), { version: MAX_VERSION, source: 'upload' })
    // 9999999999999999 would read as 10000000000000000: not a version the scan takes.
    mkdirSync(join(repo, 'm', '9999999999999999'))
    writeFileSync(join(repo, 'm', '9999999999999999', 'model.onnx'), 'too high')
    const again = opened()
    expect(again.list().map((m) => m.version)).toEqual([MAX_VERSION])
    expect(again.serving).toBe(MAX_VERSION)
    expect(await again.scanArrivals(unexpected)).toEqual([])
  })

  it('refuses to number a version 0 after the highest version there can be, instead of repeating it', async () => {
    const versions = opened()
    await versions.add(bytes(1), { version: MAX_VERSION - 1, source: 'kafka' })
    expect((await versions.add(bytes(2), { version: 0, source: 'kafka' })).version).toBe(MAX_VERSION)
    await expect(versions.add(bytes(3), { version: 0, source: 'kafka' })).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/highest a version can be/) })
    await expect(versions.add(bytes(3), { version: MAX_VERSION + 1, source: 'upload' })).rejects.toMatchObject({ code: 'BAD_REQUEST' })
    expect(versions.list().map((m) => m.version)).toEqual([MAX_VERSION - 1, MAX_VERSION])
  })

  it('gives two version-0 arrivals stored at the same time different numbers', async () => {
    const versions = opened()
    await versions.add(bytes(1), { version: 1, source: 'upload' })
    const stored = await Promise.all([versions.add(bytes(2), { version: 0, source: 'kafka' }), versions.add(bytes(3), { version: 0, source: 'kafka' })])
    expect(stored.map((m) => m.version)).toEqual([2, 3])
    expect(opened().list().map((m) => [m.version, m.sha256])).toEqual([[1, expect.any(String)], [2, stored[0]!.sha256], [3, stored[1]!.sha256]])
  })

  it('stores a large model without holding the event loop for the whole store', async () => {
    const versions = opened()
    const large = Buffer.alloc(32 * 1024 * 1024, 7)
    let stored = false
    const store = Promise.resolve(versions.add(large, { version: 1, source: 'upload' })).then((meta) => {
      stored = true
      return meta
    })
    // Another request's turn of the event loop comes while the model is hashed and written.
    const turns: boolean[] = []
    await new Promise<void>((resolve) => setImmediate(() => resolve(void turns.push(stored))))
    await new Promise<void>((resolve) => setTimeout(() => resolve(void turns.push(stored)), 0))
    expect(turns).toEqual([false, false])
    expect(await store).toMatchObject({ version: 1, size_bytes: large.byteLength, sha256: createHash('sha256').update(large).digest('hex') })
    expect(readFileSync(versions.directory.modelFile(1)).equals(large)).toBe(true)
  })
})

describe('a version that failed at start', () => {
  /** Versions 1 (served before) and 2 (the last start's choice): 2 failed at this start. */
  async function failedAt(state: 'loading' | 'serving'): Promise<ModelVersions> {
    repo = tempDir('specserve-versions-')
    const versions = opened()
    for (const v of [1, 2]) await versions.add(bytes(v), { version: v, source: 'upload' })
    versions.update(1, { state: 'ready', serving_since: '2026-01-01T00:00:00.000Z' })
    versions.update(2, { state, serving_since: state === 'serving' ? '2026-01-02T00:00:00.000Z' : null })
    versions.serving = 2
    return versions
  }

  /** Version 2 failed at start, version 1 served after the fallback, then version 3 arrived and serves. */
  async function newerServesAfterFailure(): Promise<ModelVersions> {
    const versions = await failedAt('serving')
    await versions.add(bytes(3), { version: 3, source: 'upload' })
    versions.serving = 1
    versions.failAtStart(2, 'validation gate failed: y')
    versions.update(3, { state: 'serving', serving_since: '2026-01-03T00:00:00.000Z' })
    versions.serving = 3
    return versions
  }
  const ioError = (code: string) => (): never => {
    throw Object.assign(new Error(`${code}: cannot read`), { code })
  }

  it('whose file cannot be read for a box reason (EIO, EACCES) stays a candidate; one whose file is gone or changed is rejected', async () => {
    for (const code of ['EIO', 'EACCES', 'EMFILE']) {
      const versions = await failedAt('serving')
      vi.spyOn(ModelDirectory.prototype, 'modelBytes').mockImplementation(ioError(code))
      expect(versions.failAtStart(2, 'failed to load: x')).toBeNull() // not rejected
      expect(versions.get(2)).toMatchObject({ state: 'ready', reason: 'failed at start: failed to load: x' })
      vi.restoreAllMocks()
    }
    const gone = await failedAt('serving')
    rmSync(gone.directory.modelFile(2))
    expect(gone.failAtStart(2, 'failed to load: x')).toBe('its model file is gone') // rejected
    expect(gone.get(2)).toMatchObject({ state: 'rejected', reason: 'at start: failed to load: x (its model file is gone)' })
    const changed = await failedAt('serving')
    writeFileSync(changed.directory.modelFile(2), 'not model 2')
    expect(changed.failAtStart(2, 'failed to load: x')).toBe('its model file no longer matches the sha256 it was stored with') // rejected
  })

  it('never judged (loading) is not judged by this start, and the next start tries it again first', async () => {
    const versions = await failedAt('loading')
    versions.serving = 1 // the fallback
    expect(versions.failAtStart(2, 'validation gate failed: y')).toBeNull() // not rejected
    expect(versions.get(2)).toMatchObject({ state: 'loading', reason: 'failed at start: validation gate failed: y' })
    expect(versions.pending()).toEqual([])
    versions.update(1, { state: 'serving' })
    expect(opened().serving).toBe(2)
  })

  it('is no rollback target, nor what a version_policy falls back to; a rollback below it retires it', async () => {
    const versions = await newerServesAfterFailure()
    expect(versions.previous()).toBe(1)
    expect(versions.passedUnder({ kind: 'specific', versions: [1, 2] })).toBe(1)
    expect(versions.retireFailedAbove(1)).toEqual([2])
    expect(versions.get(2)).toMatchObject({ state: 'retired', reason: 'rolled back past it to version 1' })
  })

  it('is an ordinary version again once a newer version serves: a rollback target, so keep_versions keeps a target a rollback can use', async () => {
    const versions = await newerServesAfterFailure()
    expect(versions.prune(2)).toEqual([1])
    expect(versions.get(2)).toMatchObject({ state: 'ready', reason: null })
    expect(versions.previous()).toBe(2)
  })

  it('is not judged again by this gateway before the next start (a replayed stream record)', async () => {
    const versions = await failedAt('loading')
    versions.serving = 1
    versions.failAtStart(2, 'validation gate failed: y')
    expect(versions.failedAtThisStart(2)).toBe(true)
    expect(opened().failedAtThisStart(2)).toBe(false)
  })
})

describe('a rollback target', () => {
  it('is one the version_policy allows: a narrowed policy leaves an earlier passing version it excludes where it is', async () => {
    const versions = opened()
    for (const v of [1, 2, 3]) await versions.add(bytes(v), { version: v, source: 'upload' })
    versions.update(1, { state: 'ready' })
    versions.update(2, { state: 'ready' })
    versions.update(3, { state: 'serving' })
    versions.serving = 3
    expect(versions.previous()).toBe(2)
    versions.settings = { ...latest, policy: { kind: 'specific', versions: [1, 3] } }
    expect(versions.previous()).toBe(1)
    versions.settings = { ...latest, policy: { kind: 'specific', versions: [3] } }
    expect(versions.previous()).toBeUndefined()
  })
})

