// The repository's writes: what a failed write or a crash leaves behind is cleaned away.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { writeAtomically } from '../../src/durable.ts'
import { ModelDirectory } from '../../src/registry/store.ts'
import { newMeta } from '../../src/registry/version-rules.ts'
import { tempDir } from '../temp-dirs.ts'

let repo: string
beforeEach(() => {
  repo = tempDir('specserve-store-')
})

describe('repository writes', () => {
  it('a directory that cannot be made (a file where the repository would be) names repository.path, not only the errno', () => {
    writeFileSync(join(repo, 'afile'), '')
    expect(() => new ModelDirectory(join(repo, 'afile', 'repo'), 'm').open()).toThrow(new RegExp(`^repository\\.path: cannot make the directory ${join(repo, 'afile', 'repo', 'm')}: ENOTDIR`))
  })

  it('takes back the directories it created for a model, also one whose name begins with two dots, and keeps what was put there', () => {
    // The repository created too (one level, or two), as on a first run.
    for (const [repository, name] of [[join(repo, 'repo'), '..m'], [join(repo, 'store', 'repo'), '..m'], [join(repo, 'repo'), 'm']] as const) {
      const directory = new ModelDirectory(repository, name)
      expect(directory.open()).toBe(true)
      directory.removeCreated([])
      expect(readdirSync(repo)).toEqual([])
    }
    const kept = new ModelDirectory(join(repo, 'repo'), '..m')
    kept.open()
    const bytes = Buffer.from('seed')
    kept.storeSync(bytes, newMeta(1, bytes, 'seed', null))
    mkdirSync(join(kept.dir, '2'))
    kept.removeCreated([1])
    expect(readdirSync(kept.dir)).toEqual(['2'])
    // Removed by someone else first: the parents it created go all the same.
    const gone = new ModelDirectory(join(repo, 'other', 'repo'), 'm')
    gone.open()
    rmSync(gone.dir, { recursive: true })
    gone.removeCreated([])
    expect(readdirSync(repo)).toEqual(['repo'])
  })

  it('a meta.json write that fails leaves no temporary file behind', () => {
    const dir = join(repo, 'm', '1')
    // The rename cannot replace a directory: the write fails after its temporary file was written.
    mkdirSync(join(dir, 'meta.json', 'in-the-way'), { recursive: true })
    expect(() => writeAtomically(join(dir, 'meta.json'), '{}')).toThrow()
    expect(readdirSync(dir)).toEqual(['meta.json'])
  })

  it('at open, removes the temporary files a crash left beside meta.json, and keeps the version', async () => {
    const directory = new ModelDirectory(repo, 'm')
    directory.open()
    const bytes = Buffer.from('model 1')
    await directory.store(bytes, newMeta(1, bytes, 'upload', null))
    writeFileSync(join(repo, 'm', '1', 'meta.json.tmp-4242-0badcafe'), '{"version": 1, "sta')
    new ModelDirectory(repo, 'm').open()
    expect(readdirSync(join(repo, 'm', '1')).sort()).toEqual(['meta.json', 'model.onnx'])
    expect(directory.readMeta(1)).toMatchObject({ version: 1, state: 'loading' })
  })

  it('refuses to store a version twice, also when both stores run at once', async () => {
    const directory = new ModelDirectory(repo, 'm')
    directory.open()
    const bytes = Buffer.from('model 1')
    const both = await Promise.allSettled([directory.store(bytes, newMeta(1, bytes, 'upload', null)), directory.store(bytes, newMeta(1, bytes, 'upload', null))])
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    expect(both.find((r) => r.status === 'rejected')).toMatchObject({ reason: { name: 'VersionExistsError' } })
    expect(readdirSync(join(repo, 'm'))).toEqual(['1'])
  })
})
