// scripts/kafka.sh provision fetches the broker's jars once into the cache, whoever asks and
// however many ask at once: parallel test files (and a bench beside them) all call it, and on a
// fresh machine they do so before anyone has finished. Callers serialize on a lock in the cache
// and the second finds the jars complete; nothing is fetched into a directory another caller is
// filling, and $LIB is never replaced once complete (a broker runs from it). Offline: `mvn` is
// a stand-in first on PATH that takes a second, counts its runs and writes what
// copy-dependencies would (a kafka_2.13 jar in -DoutputDirectory), relative to its working
// directory as Maven resolves a relative path against the project's.
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeEach, expect, it } from 'vitest'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const run = promisify(execFile)
const KAFKA_VERSION = /^KAFKA_VERSION="\$\{KAFKA_VERSION:-([^}]+)\}"$/m.exec(readFileSync(join(root, 'scripts', 'kafka.sh'), 'utf8'))![1]!

let dir: string
let runs: string
let env: NodeJS.ProcessEnv

beforeEach(() => {
  dir = tempDir('specserve-kafka-provision-')
  const bin = join(dir, 'bin')
  mkdirSync(bin)
  runs = join(dir, 'mvn-runs')
  writeFileSync(
    join(bin, 'mvn'),
    `#!/usr/bin/env bash
echo "$$" >>"$MVN_RUNS"
sleep 1
for arg; do case "$arg" in -DoutputDirectory=*) out="\${arg#*=}" ;; esac; done
mkdir -p "$out" && touch "$out/kafka_2.13-${KAFKA_VERSION}.jar"
`,
  )
  chmodSync(join(bin, 'mvn'), 0o755)
  env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, MVN_RUNS: runs }
})

const provision = (cache: string) => run('bash', [join(root, 'scripts', 'kafka.sh'), 'provision'], { env: { ...env, SPECSERVE_CACHE: cache }, cwd: dir })
const mvnRuns = () => (existsSync(runs) ? readFileSync(runs, 'utf8').trim().split('\n').length : 0)

it('fetches once for callers that start together on an empty cache, and leaves the jars complete', async () => {
  const cache = join(dir, 'cache')

  const results = await Promise.allSettled([provision(cache), provision(cache), provision(cache)])

  expect(results.map((r) => (r.status === 'rejected' ? String((r.reason as { stderr?: string }).stderr ?? r.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok'])
  expect(mvnRuns()).toBe(1)
  const home = join(cache, 'kafka')
  const lib = join(home, `lib-${KAFKA_VERSION}`)
  expect(readdirSync(lib).sort()).toEqual(['.complete', `kafka_2.13-${KAFKA_VERSION}.jar`])
  // No half-filled directory left beside it.
  expect(readdirSync(home).filter((name) => name.includes('tmp'))).toEqual([])

  // Complete: later callers fetch nothing.
  await provision(cache)
  expect(mvnRuns()).toBe(1)
}, 60_000)

it('puts the jars under a relative SPECSERVE_CACHE taken from where it was called (mvn runs elsewhere)', async () => {
  await provision('relative-cache')

  expect(mvnRuns()).toBe(1)
  expect(readdirSync(join(dir, 'relative-cache', 'kafka', `lib-${KAFKA_VERSION}`)).sort()).toEqual(['.complete', `kafka_2.13-${KAFKA_VERSION}.jar`])
}, 60_000)
