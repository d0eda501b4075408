// A directory on the config's chain of links that cannot be watched (a link into a directory
// not there): said once, although every change in the config's directory tries it again.
import { renameSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { watchFile } from '../../src/reload/watch.ts'
import { tempDir } from '../temp-dirs.ts'

it('says once that a directory on the chain cannot be watched, however many changes try it again', async () => {
  const dir = tempDir('specserve-watch-retry-')
  const link = join(dir, 'gateway.yaml')
  const target = join(dir, 'missing', 'gateway.yaml') // its directory is not there
  symlinkSync(target, link)
  const failures: string[] = []
  let changed: (() => void) | undefined
  const watch = watchFile(link, () => changed?.(), (_err, watched) => failures.push(watched))
  try {
    expect(failures).toEqual([join(dir, 'missing')])
    for (let i = 0; i < 3; i++) {
      // Repointed at the same place, as `ln -sfn` does it: a change of the config, and a retry of the watch.
      const seen = new Promise<void>((resolve) => (changed = resolve))
      symlinkSync(target, `${link}.new`)
      renameSync(`${link}.new`, link)
      await seen
    }
    expect(failures).toEqual([join(dir, 'missing')])
  } finally {
    watch.close()
  }
})
