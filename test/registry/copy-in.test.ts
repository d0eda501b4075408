// When a scan takes a model file copied into the repository: once two scans SETTLE_MS apart see it
// as it is (size, mtime), or at once when its mtime is MOVED_IN_MS old, so a copy still being
// written is left for a later scan (copyingIn() tells the registry to schedule one). The clock is
// faked (Date only), and each write sets its file's mtime from it, as a copy on this box would (or
// from a clock ahead or behind).
import { appendFileSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { RepositoryModelSettings } from '../../src/registry/config.ts'
import { ModelDirectory } from '../../src/registry/store.ts'
import { MOVED_IN_MS, SETTLE_MS } from '../../src/registry/copy-in.ts'
import { ModelVersions } from '../../src/registry/versions.ts'
import { tempDir } from '../temp-dirs.ts'

const latest: RepositoryModelSettings = { policy: { kind: 'latest' }, validation: { examples: undefined, dataset: undefined }, seed: undefined, canary: undefined }
const unexpected = (_version: number, err: unknown): never => {
  throw err
}

let versions: ModelVersions
let file: string

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
  versions = new ModelVersions(tempDir('specserve-copy-in-'), 'm', latest)
  versions.open(() => undefined)
  file = versions.directory.modelFile(2)
  mkdirSync(join(file, '..'))
})

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

/** Writes (or appends) as a copy does, its mtime from our (faked) clock; `ahead`: from a clock that far ahead (negative: behind; a file server's). */
function copy(data: string, { append = false, ahead = 0 } = {}): void {
  if (append) appendFileSync(file, data)
  else writeFileSync(file, data)
  const at = (Date.now() + ahead) / 1000
  utimesSync(file, at, at)
}

describe('a model file copied in', () => {
  it('still being written is left by each scan that sees it change, and taken once it has not changed for SETTLE_MS', async () => {
    copy('first part ')
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], true])
    vi.advanceTimersByTime(SETTLE_MS)
    copy('and the rest', { append: true })
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], true])
    vi.advanceTimersByTime(SETTLE_MS - 1)
    expect(await versions.scanArrivals(unexpected)).toEqual([])
    vi.advanceTimersByTime(1)
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[2], false])
    expect(versions.get(2)).toMatchObject({ state: 'loading', source: 'directory', size_bytes: 'first part and the rest'.length })
  })

  it('with an mtime from a clock ahead of ours: taken once a scan SETTLE_MS after another sees it as it was', async () => {
    copy('a model', { ahead: 60_000 })
    expect(await versions.scanArrivals(unexpected)).toEqual([])
    vi.advanceTimersByTime(SETTLE_MS)
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[2], false])
  })

  it('whose mtime is MOVED_IN_MS old (built elsewhere a while ago, then moved in) is taken at the first scan', async () => {
    copy('a model', { ahead: -MOVED_IN_MS })
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[2], false])
  })

  it('from a writer whose clock is 5 s behind ours: each part looks seconds old, and is left until two scans SETTLE_MS apart see it unchanged', async () => {
    // Before, an mtime SETTLE_MS old was taken for settled: the first part was taken, half written.
    const behind = { ahead: -5000 }
    copy('first part ', behind)
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], true])
    vi.advanceTimersByTime(SETTLE_MS)
    copy('and the rest', { ...behind, append: true })
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], true])
    vi.advanceTimersByTime(SETTLE_MS)
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[2], false])
    expect(versions.get(2)).toMatchObject({ size_bytes: 'first part and the rest'.length })
  })

  it('whose mtime is just under MOVED_IN_MS old (a clock further behind, an mtime rounded down) is left for a later scan', async () => {
    copy('a model', { ahead: 1 - MOVED_IN_MS })
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], true])
    vi.advanceTimersByTime(SETTLE_MS)
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[2], false])
  })

  it('written to between the scan\'s stat and its read is left for a later scan', async () => {
    copy('a model, longer now')
    vi.spyOn(ModelDirectory.prototype, 'modelStat').mockResolvedValueOnce({ size: 7, mtimeMs: Date.now() - MOVED_IN_MS })
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], true])
  })

  it('removed before it settled is no longer waited for (no scan scheduled for it)', async () => {
    copy('first part ')
    expect(await versions.scanArrivals(unexpected)).toEqual([])
    rmSync(file)
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], false])
    copy('again')
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], true])
    rmSync(join(file, '..'), { recursive: true })
    expect([await versions.scanArrivals(unexpected), versions.copyingIn()]).toEqual([[], false])
  })
})
