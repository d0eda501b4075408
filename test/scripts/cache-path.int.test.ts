// A relative SPECSERVE_CACHE (`SPECSERVE_CACHE=.cache npm test`) is taken from where the script
// was called and made absolute once: go refuses a relative GOMODCACHE or GOBIN ("GOMODCACHE entry
// is relative"), a build that runs in another directory would look elsewhere, and a caller given
// a relative path loses it when it changes directory. Offline: each script is given a cache that
// already holds its tool at the stamped version, so it only prints where the tool is (the
// deploy-tools.sh path that downloads is test/scripts/deploy-tools.e2e.test.ts's).
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeEach, expect, it } from 'vitest'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const run = promisify(execFile)

let dir: string
let bin: string

beforeEach(() => {
  dir = tempDir('specserve-cache-path-')
  bin = join(dir, 'relative-cache', 'bin')
  mkdirSync(bin, { recursive: true })
})

/** A stand-in for a built tool, where the script looks for it. */
function seedTool(name: string, stamp: string): void {
  writeFileSync(join(bin, name), '#!/bin/sh\n')
  chmodSync(join(bin, name), 0o755)
  writeFileSync(join(bin, `.${name}.version`), `${stamp}\n`)
}

const script = (name: string, ...args: string[]) =>
  run('bash', [join(root, 'scripts', name), ...args], { cwd: dir, env: { ...process.env, SPECSERVE_CACHE: 'relative-cache' } })

it('go-tools.sh prints the absolute path of a tool under a relative cache', async () => {
  const text = readFileSync(join(root, 'scripts', 'go-tools.sh'), 'utf8')
  const [, module, version] = /grpcurl\) MODULE="([^"]+)"; VERSION="([^"]+)"/.exec(text)!
  seedTool('grpcurl', `${module}@${version}`)

  const { stdout } = await script('go-tools.sh', 'grpcurl')

  expect(stdout).toBe(`${join(bin, 'grpcurl')}\n`)
})

it('promparse.sh prints the absolute path of its binary under a relative cache', async () => {
  const src = join(root, 'test', 'telemetry', 'promparse')
  const want = createHash('sha256').update(Buffer.concat(['go.mod', 'go.sum', 'main.go'].map((f) => readFileSync(join(src, f))))).digest('hex')
  seedTool('promparse', want)

  const { stdout } = await script('promparse.sh')

  expect(stdout).toBe(`${join(bin, 'promparse')}\n`)
})
