// The directories the repository creates survive a power loss: each new one is an entry in
// its parent, and every parent that gained one is fsynced (seen here through node:fs itself).
// A version whose directory cannot be synced after its rename is stored all the same.
import type * as fs from 'node:fs'
import type * as fsp from 'node:fs/promises'
import { join } from 'node:path'
import { beforeEach, expect, it, vi } from 'vitest'
import type { RepositoryModelSettings } from '../../src/registry/config.ts'
import { ModelDirectory } from '../../src/registry/store.ts'
import { ModelVersions } from '../../src/registry/versions.ts'
import { tempDir } from '../temp-dirs.ts'

const { synced, opened, unsyncable } = vi.hoisted(() => ({ synced: [] as string[], opened: new Map<number, string>(), unsyncable: new Set<string>() }))
/** A directory in `unsyncable` fails its fsync (EIO), as a failing disk does, through node:fs and node:fs/promises alike. */
const eio = (): Error => Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof fs>()
  return {
    ...real,
    openSync: (...args: Parameters<typeof fs.openSync>) => {
      const fd = real.openSync(...args)
      opened.set(fd, String(args[0]))
      return fd
    },
    fsyncSync: (fd: number) => {
      if (unsyncable.has(opened.get(fd) ?? '')) throw eio()
      synced.push(opened.get(fd) ?? `fd ${fd}`)
      real.fsyncSync(fd)
    },
  }
})

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof fsp>()
  return {
    ...real,
    open: async (...args: Parameters<typeof fsp.open>) => {
      const handle = await real.open(...args)
      if (unsyncable.has(String(args[0]))) handle.sync = () => Promise.reject(eio())
      return handle
    },
  }
})

let repo: string
beforeEach(() => {
  repo = tempDir('specserve-store-sync-')
  synced.length = 0
  unsyncable.clear()
})

it('syncs the parent of every directory it creates for a model, up to the one that existed', () => {
  const directory = new ModelDirectory(join(repo, 'store', 'repo'), 'm')
  expect(directory.open()).toBe(true)
  expect(synced).toEqual([join(repo, 'store', 'repo'), join(repo, 'store'), repo])
})

it('syncs nothing when the model directory was there already', () => {
  new ModelDirectory(repo, 'm').open()
  synced.length = 0
  expect(new ModelDirectory(repo, 'm').open()).toBe(false)
  expect(synced).toEqual([])
})

it('records a version whose model directory fails its sync after the rename: reported, and the next version 0 is numbered after it', async () => {
  const latest: RepositoryModelSettings = { policy: { kind: 'latest' }, validation: { examples: undefined, dataset: undefined }, seed: undefined, canary: undefined }
  const versions = new ModelVersions(repo, 'm', latest)
  versions.open(() => undefined)
  unsyncable.add(versions.directory.dir)
  const unsynced: [number, unknown][] = []
  expect(await versions.add(Buffer.from('model 1'), { version: 0, source: 'kafka' }, (version, err) => unsynced.push([version, err]))).toMatchObject({ version: 1, state: 'loading' })
  expect(unsynced).toEqual([[1, expect.objectContaining({ code: 'EIO' })]])
  expect(versions.list().map((m) => m.version)).toEqual([1])
  unsyncable.clear()
  expect((await versions.add(Buffer.from('model 2'), { version: 0, source: 'kafka' })).version).toBe(2)
  await expect(versions.add(Buffer.from('model 1'), { version: 1, source: 'upload' })).rejects.toThrow(/version 1 exists already/)
})

it('keeps a version\'s new state in memory as on disk when its meta is renamed into place but the directory sync fails', async () => {
  const latest: RepositoryModelSettings = { policy: { kind: 'latest' }, validation: { examples: undefined, dataset: undefined }, seed: undefined, canary: undefined }
  const versions = new ModelVersions(repo, 'm', latest)
  versions.open(() => undefined)
  await versions.add(Buffer.from('model 1'), { version: 1, source: 'upload' })
  unsyncable.add(join(versions.directory.dir, '1'))
  expect(() => versions.update(1, { state: 'ready', reason: null })).toThrow(/EIO/)
  expect([versions.get(1)?.state, versions.directory.readMeta(1)?.state]).toEqual(['ready', 'ready'])
})
