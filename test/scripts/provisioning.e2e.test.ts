// The venv provisioning scripts recover from an interrupted earlier run. `python3 -m venv`
// stopped by Ctrl-C or a CI timeout leaves bin/python but no pip and no completion stamp;
// every later run used to fail on it ("No module named pip") until someone deleted the venv.
// schemathesis-env.sh is the cheapest script on the shared path (scripts/peers/lib.sh) that
// python-env.sh, tritonclient-env.sh and the peers' scripts take too.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeEach, expect, it } from 'vitest'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const run = promisify(execFile)

let cache: string

beforeEach(() => {
  cache = tempDir('specserve-provisioning-')
})

it('schemathesis-env.sh rebuilds a venv left without pip and without its stamp by an interrupted run', async () => {
  // The venv is named after its lock (scripts/peers/lib.sh): venv-NAME-<first 12 hex of the lock's sha256>.
  const lock = readFileSync(join(root, 'scripts', 'peers', 'locks', 'venv-schemathesis.txt'))
  const venv = join(cache, `venv-schemathesis-${createHash('sha256').update(lock).digest('hex').slice(0, 12)}`)
  await run('python3', ['-m', 'venv', '--without-pip', venv])
  expect(existsSync(join(venv, 'bin', 'python'))).toBe(true)

  const { stdout } = await run('bash', [join(root, 'scripts', 'schemathesis-env.sh')], { env: { ...process.env, SPECSERVE_CACHE: cache } })

  const schemathesis = stdout.trim()
  expect(schemathesis).toBe(join(venv, 'bin', 'schemathesis'))
  const version = await run(schemathesis, ['--version'])
  expect(version.stdout).toContain('4.32.5')
  expect(existsSync(join(venv, '.specserve-requirements'))).toBe(true)
}, 300_000)
