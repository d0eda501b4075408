// serve's listener file as it starts: a file a previous run left goes, one a running gateway
// wrote stays (a second serve that then fails to bind must not hide that gateway from its probe).
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { forgetListener, LISTENER_FILE_ENV } from '../src/listener-file.ts'
import { tempDir } from './temp-dirs.ts'

/** Over Linux's largest pid (2^22): no process has it. */
const GONE = 2 ** 22 + 1

describe('forgetListener (serve, before it binds)', () => {
  let file: string
  const before = process.env[LISTENER_FILE_ENV]
  beforeEach(() => {
    file = join(tempDir('specserve-listener-file-'), 'listener.json')
    process.env[LISTENER_FILE_ENV] = file
  })
  afterEach(() => {
    if (before === undefined) delete process.env[LISTENER_FILE_ENV]
    else process.env[LISTENER_FILE_ENV] = before
  })
  const announced = (pid: unknown): void => writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 8080, tls: false, mutualTls: false, config: '/x.yaml', pid }))

  it('keeps a file another running process wrote', () => {
    announced(process.ppid)
    expect(forgetListener()).toBeUndefined()
    expect(existsSync(file)).toBe(true)
  })

  it('removes one whose process is gone, one naming this process (a previous run of the container, same pid), and one unreadable', () => {
    for (const write of [() => announced(GONE), () => announced(process.pid), () => announced('1'), () => writeFileSync(file, '{')]) {
      write()
      expect(forgetListener()).toBeUndefined()
      expect(existsSync(file)).toBe(false)
    }
  })
})
