// scripts/deploy-tools.sh compose-schema fetches the Compose Specification schema with
// `go mod download` into the cache. Under a relative SPECSERVE_CACHE it failed (go refuses a
// relative GOMODCACHE) and said nothing: go -json reports the error on stdout, which the script
// read for the module's directory. It now makes the cache absolute, and passes go's error on.
// Offline: a temp cache fed from the shared cache's own module downloads (GOPROXY=file://, no
// checksum database to ask), the module provisioned there first as the deploy tests do.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, beforeEach, expect, it } from 'vitest'
import { tool } from '../deploy/tools.ts'
import { cacheDir, root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const run = promisify(execFile)

let downloads: string
let dir: string

beforeAll(() => {
  tool('compose-schema') // into the shared cache, so its module download is there to serve
  downloads = join(cacheDir(), 'go', 'mod', 'cache', 'download')
}, 300_000)

beforeEach(() => {
  dir = tempDir('specserve-deploy-tools-')
})

const composeSchema = (env: NodeJS.ProcessEnv) =>
  run('bash', [join(root, 'scripts', 'deploy-tools.sh'), 'compose-schema'], { cwd: dir, env: { ...process.env, SPECSERVE_CACHE: 'relative-cache', GOSUMDB: 'off', ...env } })

it('compose-schema works under a relative SPECSERVE_CACHE and prints an absolute path into it', async () => {
  const { stdout } = await composeSchema({ GOPROXY: `file://${downloads}` })

  const schema = stdout.trim()
  expect(schema.startsWith(`${join(dir, 'relative-cache', 'go', 'mod')}/`)).toBe(true)
  expect(existsSync(schema)).toBe(true)
  expect(JSON.parse(readFileSync(schema, 'utf8'))).toMatchObject({ properties: { services: expect.any(Object) } })
}, 120_000)

it('says why when go cannot fetch the module', async () => {
  const failure = await composeSchema({ GOPROXY: 'off' }).then(
    () => undefined,
    (error: unknown) => error as { code: number; stderr: string },
  )

  expect(failure?.code).toBe(1)
  expect(failure?.stderr).toMatch(/deploy-tools: go mod download github\.com\/compose-spec\/compose-go\/v2@\S+ failed: .*GOPROXY=off/)
})
