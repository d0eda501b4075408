// ensure_venv (scripts/peers/lib.sh) builds a venv from hash locks only: pip installs with
// --require-hashes --no-deps, so bytes that differ from the lock stop provisioning, and a venv
// built from another lock is rebuilt to hold exactly the new one (pip alone would leave a
// dropped package behind). Offline: two tiny wheels made here, served by --find-links.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeEach, expect, it } from 'vitest'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const run = promisify(execFile)

// Writes DIR/NAME-1.0-py3-none-any.whl: one module `NAME` and the metadata pip needs.
const makeWheel = `
import base64, hashlib, sys, zipfile
name, out = sys.argv[1], sys.argv[2]
info = f'{name}-1.0.dist-info'
files = {
    f'{name}/__init__.py': f'NAME = {name!r}\\n',
    f'{info}/METADATA': f'Metadata-Version: 2.1\\nName: {name}\\nVersion: 1.0\\n',
    f'{info}/WHEEL': 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
}
digest = lambda text: base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()
record = ''.join(f'{path},sha256={digest(text)},{len(text.encode())}\\n' for path, text in files.items())
with zipfile.ZipFile(f'{out}/{name}-1.0-py3-none-any.whl', 'w') as whl:
    for path, text in {**files, f'{info}/RECORD': record + f'{info}/RECORD,,\\n'}.items():
        whl.writestr(path, text)
`

let dir: string
let wheels: string
let env: NodeJS.ProcessEnv
let venv: string

beforeEach(() => {
  dir = tempDir('specserve-venv-lock-')
  wheels = join(dir, 'wheels')
  venv = join(dir, 'cache', 'venv-tiny')
  // No index: pip may only take the wheels made here; no pip cache outside the temp dir.
  env = { ...process.env, SPECSERVE_CACHE: join(dir, 'cache'), PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheels, PIP_NO_CACHE_DIR: '1' }
})

async function wheelSha256(name: string): Promise<string> {
  mkdirSync(wheels, { recursive: true })
  await run('python3', ['-c', makeWheel, name, wheels])
  return createHash('sha256').update(readFileSync(join(wheels, `${name}-1.0-py3-none-any.whl`))).digest('hex')
}

function writeLock(file: string, pins: Record<string, string>): string {
  const path = join(dir, file)
  writeFileSync(path, Object.entries(pins).map(([name, sha]) => `${name}==1.0 \\\n    --hash=sha256:${sha}\n`).join(''))
  return path
}

/** Runs ensure_venv from lib.sh as the provisioning scripts do; resolves with its output. */
function ensureVenv(check: string, ...locks: string[]) {
  const script = 'source "$1"; shift; ensure_venv "$@"'
  return run('bash', ['-c', script, 'ensure-venv', join(root, 'scripts', 'peers', 'lib.sh'), venv, check, ...locks], { env })
}

async function imports(module: string): Promise<boolean> {
  return run(join(venv, 'bin', 'python'), ['-c', `import ${module}`]).then(() => true, () => false)
}

it('stops provisioning with pip\'s hash error when a file does not match its lock, and leaves no stamp', async () => {
  const sha = await wheelSha256('tinya')
  const tampered = sha.replace(/^./, (c) => (c === '0' ? '1' : '0'))
  const lock = writeLock('tampered.txt', { tinya: tampered })

  const failure = await ensureVenv('import tinya', lock).then(() => undefined, (error: unknown) => error as { code: number; stderr: string })

  expect(failure?.code).not.toBe(0)
  expect(failure?.stderr).toContain('THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE')
  expect(failure?.stderr).toContain(tampered)
  expect(await imports('tinya')).toBe(false)
  expect(existsSync(join(venv, '.specserve-requirements'))).toBe(false)
}, 120_000)

it('reuses a venv while its lock is unchanged, and rebuilds it to hold exactly a changed lock', async () => {
  const shaA = await wheelSha256('tinya')
  const shaB = await wheelSha256('tinyb')
  const both = writeLock('both.txt', { tinya: shaA, tinyb: shaB })

  const first = await ensureVenv('import tinya, tinyb', both)
  expect(first.stdout).toBe('')
  expect(first.stderr).toContain('installing')
  expect(await imports('tinyb')).toBe(true)

  const again = await ensureVenv('import tinya, tinyb', both)
  expect(again.stderr).toBe('')

  const onlyA = writeLock('only-a.txt', { tinya: shaA })
  const changed = await ensureVenv('import tinya', onlyA)
  expect(changed.stderr).toContain('installing')
  expect(await imports('tinya')).toBe(true)
  expect(await imports('tinyb')).toBe(false)
}, 120_000)
