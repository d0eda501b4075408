// The directories the repository creates survive a power loss: each new one is an entry in
// its parent, and every parent that gained one is fsynced (seen here through node:fs itself).
import type * as fs from 'node:fs'
import { join } from 'node:path'
import { beforeEach, expect, it, vi } from 'vitest'
import { ModelDirectory } from '../../src/registry/store.ts'
import { tempDir } from '../temp-dirs.ts'

const { synced, opened } = vi.hoisted(() => ({ synced: [] as string[], opened: new Map<number, string>() }))
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
      synced.push(opened.get(fd) ?? `fd ${fd}`)
      real.fsyncSync(fd)
    },
  }
})

let repo: string
beforeEach(() => {
  repo = tempDir('specserve-store-sync-')
  synced.length = 0
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
