// The throwaway PKI's directory holds a CA private key: it must not outlive the test file.
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname } from 'node:path'
import { describe, expect, it } from 'vitest'
import { removeTempDirs } from '../temp-dirs.ts'
import { makePki } from './certs.ts'

describe('makePki', () => {
  it('is removed, CA key and issued keys included, by remove()', () => {
    const pki = makePki()
    const client = pki.issue('leak-check', { client: true })
    expect([existsSync(pki.ca), existsSync(client.key)]).toEqual([true, true])
    pki.remove()
    expect(existsSync(pki.dir)).toBe(false)
  })

  it('is removed after the test file without remove() (a tempDir under os.tmpdir())', () => {
    const pki = makePki()
    expect(dirname(pki.dir)).toBe(tmpdir())
    removeTempDirs() // what test/setup/remove-temp-dirs.ts runs after every file
    expect(existsSync(pki.dir)).toBe(false)
  })
})
