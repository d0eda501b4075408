// The directories serve and eval make for a config's paths: one component at a time, all or
// nothing, a failure naming the key that placed the directory there.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeDirs, mkdirKeyed } from '../../src/config/paths.ts'
import { tempDir } from '../temp-dirs.ts'

describe('making a config path\'s directory', () => {
  it('makes each missing component and says which it made, outermost first', () => {
    const dir = tempDir('specserve-paths-')
    expect(makeDirs(join(dir, 'a', 'b'))).toEqual([join(dir, 'a'), join(dir, 'a', 'b')])
    expect(existsSync(join(dir, 'a', 'b'))).toBe(true)
    expect(makeDirs(join(dir, 'a', 'b'))).toEqual([])
  })

  it('leaves nothing behind when a component cannot be made', () => {
    const dir = tempDir('specserve-paths-')
    expect(() => makeDirs(join(dir, 'a', 'x'.repeat(300)))).toThrow(/ENAMETOOLONG/)
    expect(existsSync(join(dir, 'a'))).toBe(false)
  })

  it('fails, naming its key, where a recursive mkdir never returns (/proc as root)', () => {
    expect(() => mkdirKeyed('/proc/specserve-no-such/spool', 'output.kafka.spool_dir')).toThrow(/^output\.kafka\.spool_dir: cannot make the directory \/proc\/specserve-no-such\/spool: /)
  })
})
