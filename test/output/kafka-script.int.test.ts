// scripts/kafka.sh and a stale pid file. A broker directory outlives a reboot or a container
// restart, and its pid file then names whatever process got that pid since: the script must
// neither report that stranger as the running broker nor signal it.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { freePort, root, startProcess, waitForPort, type Proc } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const run = promisify(execFile)
const kafkaSh = async (...args: string[]): Promise<string> => (await run('bash', [join(root, 'scripts', 'kafka.sh'), ...args])).stdout.trim()

/** Whether the process exists and is not a zombie (a signalled child of ours stays a zombie until node reaps it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

let dir: string
let stranger: Proc

beforeEach(async () => {
  dir = tempDir('specserve-kafka-script-')
  // What a reboot leaves: the recorded pid now belongs to an unrelated process.
  stranger = startProcess('sleep', ['300'])
  writeFileSync(join(dir, 'pid'), `${stranger.child.pid}\n`)
})

afterEach(async () => {
  await kafkaSh('clean', '--dir', dir)
  await stranger.stop()
})

it('stop leaves alone the unrelated process a stale pid file names, and removes the file', async () => {
  await kafkaSh('stop', '--dir', dir)

  expect(alive(stranger.child.pid as number)).toBe(true)
  expect(existsSync(join(dir, 'pid'))).toBe(false)
})

it('start with a stale pid file starts a real broker instead of reporting the stranger as running', async () => {
  const port = await freePort()
  const bootstrap = await kafkaSh('start', '--dir', dir, '--port', String(port), '--owner-pid', String(process.pid))

  expect(bootstrap).toBe(`127.0.0.1:${port}`)
  await waitForPort(port, 1_000)
  const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'))
  expect(pid).not.toBe(stranger.child.pid)
  expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('kafka.Kafka')
  expect(await kafkaSh('status', '--dir', dir)).toBe(bootstrap)

  await kafkaSh('stop', '--dir', dir)
  expect(alive(pid)).toBe(false)
  expect(alive(stranger.child.pid as number)).toBe(true)
}, 120_000)
