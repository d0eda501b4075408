// ensure_venv (scripts/peers/lib.sh) builds a venv from hash locks only: pip installs with
// --require-hashes --no-deps, so bytes that differ from the lock stop provisioning. Each venv is
// named after its locks (venv-NAME-<12 hex of their sha256>), so checkouts with other locks
// sharing the cache keep their own venvs; and it is built only with the python3 the locks were
// resolved on (their `# python:` line). Offline: two tiny wheels made here, served by --find-links.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, beforeEach, expect, it } from 'vitest'
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

/** This machine's python3 as a lock's `# python:` line names it, e.g. "cpython 3.11". */
let python: string
let dir: string
let cache: string
let wheels: string
let env: NodeJS.ProcessEnv

beforeAll(async () => {
  const { stdout } = await run('python3', ['-c', 'import sys; print(sys.implementation.name, "%d.%d" % sys.version_info[:2])'])
  python = stdout.trim()
})

beforeEach(() => {
  dir = tempDir('specserve-venv-lock-')
  cache = join(dir, 'cache')
  wheels = join(dir, 'wheels')
  // No index: pip may only take the wheels made here; no pip cache outside the temp dir.
  env = { ...process.env, SPECSERVE_CACHE: cache, PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheels, PIP_NO_CACHE_DIR: '1' }
})

async function wheelSha256(name: string): Promise<string> {
  mkdirSync(wheels, { recursive: true })
  await run('python3', ['-c', makeWheel, name, wheels])
  return createHash('sha256').update(readFileSync(join(wheels, `${name}-1.0-py3-none-any.whl`))).digest('hex')
}

/** A lock as lock.sh writes it: the python it was resolved on, then each pin with its sha256. */
function writeLock(file: string, pins: Record<string, string>, resolvedOn = python): string {
  const path = join(dir, file)
  const header = `# python: ${resolvedOn} (resolved on it; scripts/peers/lib.sh builds the venv with no other)\n`
  writeFileSync(path, header + Object.entries(pins).map(([name, sha]) => `${name}==1.0 \\\n    --hash=sha256:${sha}\n`).join(''))
  return path
}

/** Where the venv of NAME built from LOCKS lives: venv-NAME-<first 12 hex of the locks' sha256>. */
function venvFor(name: string, ...locks: string[]): string {
  const sha = createHash('sha256').update(Buffer.concat(locks.map((lock) => readFileSync(lock)))).digest('hex')
  return join(cache, `venv-${name}-${sha.slice(0, 12)}`)
}

/** Runs ensure_venv from lib.sh as the provisioning scripts do; stdout is the VENV it set. */
function ensureVenv(name: string, check: string, ...locks: string[]) {
  const script = 'source "$1"; shift; ensure_venv "$@"; printf "%s\\n" "$VENV"'
  const args = ['-c', script, 'ensure-venv', join(root, 'scripts', 'peers', 'lib.sh'), name, check, ...locks]
  return run('bash', args, { env, cwd: dir })
}

async function imports(venv: string, module: string): Promise<boolean> {
  return run(join(venv, 'bin', 'python'), ['-c', `import ${module}`]).then(() => true, () => false)
}

const failureOf = (p: Promise<unknown>) => p.then(() => undefined, (error: unknown) => error as { code: number; stderr: string })

it('stops provisioning with pip\'s hash error when a file does not match its lock, and leaves no stamp', async () => {
  const sha = await wheelSha256('tinya')
  const tampered = sha.replace(/^./, (c) => (c === '0' ? '1' : '0'))
  const lock = writeLock('tampered.txt', { tinya: tampered })

  const failure = await failureOf(ensureVenv('tiny', 'import tinya', lock))

  expect(failure?.code).not.toBe(0)
  expect(failure?.stderr).toContain('THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE')
  expect(failure?.stderr).toContain(tampered)
  const venv = venvFor('tiny', lock)
  expect(await imports(venv, 'tinya')).toBe(false)
  expect(existsSync(join(venv, '.specserve-requirements'))).toBe(false)
}, 120_000)

it('gives each lock a venv of its own in one cache: provisioning one leaves the other, and its stamp, untouched', async () => {
  const shaA = await wheelSha256('tinya')
  const shaB = await wheelSha256('tinyb')
  // Two checkouts' locks for the same venv, e.g. an older commit's worktree beside this one.
  const both = writeLock('both.txt', { tinya: shaA, tinyb: shaB })
  const onlyA = writeLock('only-a.txt', { tinya: shaA })

  const first = await ensureVenv('tiny', 'import tinya, tinyb', both)
  const venvBoth = venvFor('tiny', both)
  expect(first.stdout).toBe(`${venvBoth}\n`)
  expect(first.stderr).toContain('installing')
  const stamp = join(venvBoth, '.specserve-requirements')
  const stampBefore = { text: readFileSync(stamp, 'utf8'), mtimeMs: statSync(stamp).mtimeMs }

  const other = await ensureVenv('tiny', 'import tinya', onlyA)
  const venvOnlyA = venvFor('tiny', onlyA)
  expect(other.stdout).toBe(`${venvOnlyA}\n`)
  expect(venvOnlyA).not.toBe(venvBoth)
  expect(other.stderr).toContain('installing')
  expect(await imports(venvOnlyA, 'tinya')).toBe(true)
  expect(await imports(venvOnlyA, 'tinyb')).toBe(false)

  expect(await imports(venvBoth, 'tinyb')).toBe(true)
  expect({ text: readFileSync(stamp, 'utf8'), mtimeMs: statSync(stamp).mtimeMs }).toEqual(stampBefore)
  // Back and forth, as two checkouts would: each reuses its venv, nothing is rebuilt.
  const again = await ensureVenv('tiny', 'import tinya, tinyb', both)
  expect(again).toEqual({ stdout: `${venvBoth}\n`, stderr: '' })
  const againOther = await ensureVenv('tiny', 'import tinya', onlyA)
  expect(againOther).toEqual({ stdout: `${venvOnlyA}\n`, stderr: '' })
  expect(readdirSync(cache).filter((name) => name.startsWith('venv-')).sort()).toEqual(
    [venvBoth, venvOnlyA].map((venv) => venv.slice(cache.length + 1)).sort(),
  )
}, 120_000)

it('refuses, before creating anything, a python3 other than the one the locks were resolved on, and says how to fix it', async () => {
  const lockPython = 'cpython 3.11'
  const otherPython = 'cpython 3.12'
  // A python3 first on PATH that reports another version whatever it is asked.
  const bin = join(dir, 'bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'python3'), `#!/bin/sh\necho '${otherPython}'\n`)
  chmodSync(join(bin, 'python3'), 0o755)
  env = { ...env, PATH: `${bin}:${process.env.PATH ?? ''}` }
  const lock = writeLock('lock.txt', { tinya: '0'.repeat(64) }, lockPython)

  const failure = await failureOf(ensureVenv('tiny', 'import tinya', lock))

  expect(failure?.code).not.toBe(0)
  expect(failure?.stderr).toContain(`python3 (${join(bin, 'python3')}) is ${otherPython}, but the locks (${lock}) were resolved on ${lockPython}`)
  expect(failure?.stderr).toContain(`Put a ${lockPython} python3 first on PATH, or regenerate the locks on this one: run the scripts/peers/lock.sh command`)
  expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([])
  expect(readdirSync(dir).sort()).toEqual(['bin', 'lock.txt'])
})

it('takes a relative SPECSERVE_CACHE from where it was called: the venv, and the path it prints, are absolute', async () => {
  const sha = await wheelSha256('tinya')
  const lock = writeLock('lock.txt', { tinya: sha })
  env = { ...env, SPECSERVE_CACHE: 'cache' } // `cache` below dir, the directory ensureVenv runs in

  const { stdout } = await ensureVenv('tiny', 'import tinya', lock)

  const venv = venvFor('tiny', lock)
  expect(venv.startsWith(`${dir}/`)).toBe(true)
  expect(stdout).toBe(`${venv}\n`)
  expect(await imports(venv, 'tinya')).toBe(true)
}, 120_000)
