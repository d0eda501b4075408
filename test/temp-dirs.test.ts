// Tests' temporary directories: tempDir() registers what it makes and removeTempDirs() (run
// after every test file by test/setup/remove-temp-dirs.ts) removes it; the run's temp root
// (test/setup/temp-root.ts) fails the run naming any `specserve-*` entry left behind.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import useRunTempRoot from './setup/temp-root.ts'
import { removeTempDir, removeTempDirs, tempDir } from './temp-dirs.ts'

describe('tempDir', () => {
  it('makes <tmpdir>/<prefix>XXXXXX, and removeTempDirs deletes it with its contents', () => {
    const dir = tempDir('specserve-temp-test-')
    expect(dirname(dir)).toBe(tmpdir())
    expect(basename(dir)).toMatch(/^specserve-temp-test-\w{6}$/)
    mkdirSync(join(dir, 'nested'))
    writeFileSync(join(dir, 'nested', 'ca-key.pem'), 'secret')
    const other = tempDir('specserve-temp-test-')
    removeTempDirs()
    expect([existsSync(dir), existsSync(other)]).toEqual([false, false])
  })

  it('removeTempDir deletes one now (a helper stop()), and again is harmless', () => {
    const dir = tempDir('specserve-temp-test-')
    removeTempDir(dir)
    expect(existsSync(dir)).toBe(false)
    expect(() => removeTempDir(dir)).not.toThrow()
  })
})

describe("the run's temp root (vitest globalSetup)", () => {
  const before = process.env.TMPDIR

  it('points TMPDIR at a root of its own; at the end a leftover specserve-* entry fails the run by name', () => {
    const teardown = useRunTempRoot()
    const root = tmpdir()
    try {
      expect(basename(root)).toMatch(/^specserve-vitest-/)
      mkdirSync(join(root, 'specserve-pki-leaked'))
      writeFileSync(join(root, 'specserve-not-a-model-1.onnx'), '')
      mkdirSync(join(root, 'pip-build-xyz')) // a peer's own temp files: not ours to report
    } finally {
      expect(teardown).toThrow(/tests left 2 temporary entries behind .*: specserve-not-a-model-1\.onnx, specserve-pki-leaked$/)
    }
    expect(process.env.TMPDIR).toBe(before)
    expect(existsSync(root)).toBe(false)
  })

  it('passes, and removes the root, when every helper cleaned up', () => {
    const teardown = useRunTempRoot()
    const root = tmpdir()
    removeTempDir(tempDir('specserve-clean-'))
    expect(teardown).not.toThrow()
    expect(process.env.TMPDIR).toBe(before)
    expect(existsSync(root)).toBe(false)
  })
})
