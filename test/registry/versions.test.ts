// One model's versions on disk: which one a start serves, what version_policy lets serve,
// rollback's target, keep_versions, and what a crash in the middle of a store leaves.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { RepositoryModelSettings } from '../../src/registry/config.ts'
import { ModelVersions } from '../../src/registry/versions.ts'

let repo: string
const latest: RepositoryModelSettings = { policy: { kind: 'latest' }, validation: { examples: undefined, dataset: undefined }, seed: undefined, canary: undefined }
const bytes = (n: number): Buffer => Buffer.from(`model ${n}`)

function opened(settings = latest): ModelVersions {
  const versions = new ModelVersions(repo, 'm', settings)
  versions.open(() => undefined)
  return versions
}

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), 'specserve-versions-'))
})
afterEach(() => rmSync(repo, { recursive: true, force: true }))

describe('ModelVersions', () => {
  it('serves, after a restart, the version that served last, even when a higher one passed', () => {
    const first = opened()
    for (const v of [1, 2, 3]) first.add(bytes(v), { version: v, source: 'upload' })
    first.update(3, { state: 'ready' })
    first.update(2, { state: 'serving', serving_since: '2026-01-01T00:00:00.000Z' })
    first.update(1, { state: 'ready' })
    expect(opened().serving).toBe(2)
  })

  it('with no version that served, picks the highest the policy allows that was never rejected', () => {
    const first = opened({ ...latest, policy: { kind: 'specific', versions: [1, 2] } })
    for (const v of [1, 2, 3]) first.add(bytes(v), { version: v, source: 'upload' })
    expect(opened({ ...latest, policy: { kind: 'specific', versions: [1, 2] } }).serving).toBe(2)
    first.update(2, { state: 'rejected', reason: 'gate' })
    const again = opened({ ...latest, policy: { kind: 'specific', versions: [1, 2] } })
    expect(again.serving).toBe(1)
    expect(again.judge(3)).toEqual({ serve: false, gate: false, reason: 'not in version_policy.specific' })
    expect(again.judge(2)).toEqual({ serve: true })
    expect(opened().judge(1)).toEqual({ serve: false, gate: true, reason: 'not newer than the serving version 3' })
  })

  it('at start, a canary cut short and a version stored but never judged are judged again', () => {
    const first = opened()
    for (const v of [1, 2, 3]) first.add(bytes(v), { version: v, source: 'upload' })
    first.update(1, { state: 'serving', serving_since: '2026-01-01T00:00:00.000Z' })
    first.update(2, { state: 'canary' })
    const again = opened()
    expect(again.serving).toBe(1)
    expect(again.get(2)?.state).toBe('loading')
    expect(again.pending()).toEqual([2, 3])
  })

  it('numbers a version 0 as the next after the highest known, and refuses an existing one', () => {
    const versions = opened()
    versions.add(bytes(4), { version: 4, source: 'kafka' })
    expect(versions.add(bytes(5), { version: 0, source: 'kafka' }).version).toBe(5)
    expect(() => versions.add(bytes(5), { version: 5, source: 'upload' })).toThrow(/version 5 exists already/)
  })

  it('rolls back to the highest passing version below the serving one, never to a rejected or retired one', () => {
    const versions = opened()
    for (const v of [1, 2, 3, 4]) versions.add(bytes(v), { version: v, source: 'upload' })
    versions.update(1, { state: 'ready' })
    versions.update(2, { state: 'retired' })
    versions.update(3, { state: 'rejected' })
    versions.update(4, { state: 'serving' })
    versions.serving = 4
    expect(versions.previous()).toBe(1)
    versions.serving = 1
    expect(versions.previous()).toBeUndefined()
  })

  it('keeps the model files of keep_versions passing versions; older ones are retired, their meta kept', () => {
    const versions = opened()
    for (const v of [1, 2, 3, 4]) versions.add(bytes(v), { version: v, source: 'upload' })
    for (const v of [1, 2, 3]) versions.update(v, { state: 'ready' })
    versions.update(4, { state: 'serving' })
    versions.serving = 4
    expect(versions.prune(2)).toEqual([2, 1])
    expect(versions.list().map((m) => [m.version, m.state])).toEqual([[1, 'retired'], [2, 'retired'], [3, 'ready'], [4, 'serving']])
    expect(existsSync(versions.directory.modelFile(2))).toBe(false)
    expect(versions.previous()).toBe(3)
  })

  it('removes a store a crash cut short, and skips a directory whose model is not there yet', () => {
    const dir = join(repo, 'm')
    mkdirSync(join(dir, '.incoming-7-abcd'), { recursive: true })
    writeFileSync(join(dir, '.incoming-7-abcd', 'model.onnx'), 'half a mod')
    mkdirSync(join(dir, '8'))
    const versions = opened()
    expect(readdirSync(dir).sort()).toEqual(['8'])
    expect(versions.list()).toEqual([])
    expect(versions.serving).toBeUndefined()
    writeFileSync(join(dir, '8', 'model.onnx'), 'copied in')
    expect(versions.scan()).toEqual([8])
    expect(versions.get(8)).toMatchObject({ state: 'loading', source: 'directory', size_bytes: 9 })
  })
})
