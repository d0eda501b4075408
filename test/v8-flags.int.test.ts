// The gateway's process runs with V8's allocation-site pretenuring off (src/v8-flags.ts). What
// is checked is the effect: a place in the code whose objects V8 found mostly alive makes
// its next ones in the old generation with it on, and in the young one with it off.
import { execFileSync, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { keepAllocationsYoung } from '../src/v8-flags.ts'
import { cli } from './cli-run.ts'
import { root } from './helpers.ts'
import { tempDir } from './temp-dirs.ts'

const module = JSON.stringify(pathToFileURL(join(root, 'src', 'v8-flags.ts')).href)

/**
 * MB of old generation that 100,000 short-lived objects from one literal take, after
 * 4 × 100,000 from it were kept alive through young collections (the first batch through
 * four, the last through one): what tenures a place when pretenuring is on. ~4.6 MB if they
 * are born old, 0 if young. Needs --expose-gc.
 */
const MEASURE = `
  const { getHeapSpaceStatistics } = await import('node:v8')
  const oldUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_used_size
  const make = (i) => ({ i, next: null, other: null })
  const tenuredMb = () => {
    let keep = []
    for (let r = 0; r < 4; r++) {
      for (let i = 0; i < 100000; i++) keep.push(make(i))
      globalThis.gc({ type: 'minor' })
    }
    keep = null
    globalThis.gc()
    let last
    const before = oldUsed()
    for (let i = 0; i < 100000; i++) last = make(i)
    // last is read, so the loop's objects are made, not optimized away.
    return (oldUsed() - before) / 2 ** 20 + last.i * 0
  }`

/**
 * The MB a fresh Node process measures, after `setup` (module code) has run. Single-threaded:
 * whether V8 tenures the place depends on when its optimizing compilers, on threads of their
 * own, finish with `make` (measured: 2 starts in 10 did not tenure it with them, 0 in 46
 * without). A fixed young generation: V8 tenures only once it has grown to a size that
 * depends on the machine's memory otherwise.
 */
function measured(setup: string): number {
  const script = `${setup}\n${MEASURE}\nconsole.log(tenuredMb())`
  const flags = ['--expose-gc', '--single-threaded', '--min-semi-space-size=16', '--max-semi-space-size=16']
  return Number(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }).trim())
}

/**
 * Whether pretenuring is off in the CLI's own process (`specserve --version`, after
 * `nodeFlags`), read as it exits from the module the CLI called (one instance per process).
 * Its effect is what `measured` shows; inside the CLI, other code compiling on V8's threads
 * makes that measure unreliable.
 */
function offInCli(nodeFlags: string[] = []): boolean {
  const probe = join(tempDir('specserve-v8-flags-'), 'probe.mjs')
  writeFileSync(probe, `const { pretenuringOff } = await import(${module})\nprocess.on('exit', () => process.stderr.write('off: ' + pretenuringOff() + '\\n'))\n`)
  const run = spawnSync(process.execPath, [...nodeFlags, '--import', probe, cli, '--version'], { cwd: root, encoding: 'utf8' })
  expect(run.status).toBe(0)
  expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  const line = /^off: (true|false)$/m.exec(run.stderr)
  expect(line, run.stderr).not.toBeNull()
  return line![1] === 'true'
}

describe('allocation-site pretenuring', () => {
  it('tenures a place whose objects were found alive, by default (what the gateway turns off)', () => {
    expect(measured('')).toBeGreaterThan(2)
  })

  it('is off once keepAllocationsYoung has run: the same objects are born young', () => {
    expect(measured(`const { keepAllocationsYoung } = await import(${module})\nif (!keepAllocationsYoung([])) throw new Error('not off')`)).toBeLessThan(0.5)
  })

  it('stays as node was told when its command line sets it, in any spelling V8 takes', () => {
    expect(measured(`const { keepAllocationsYoung } = await import(${module})\nif (keepAllocationsYoung(['--allocation-site-pretenuring'])) throw new Error('off')`)).toBeGreaterThan(2)
    // Only flags given: none of these calls sets one in this process.
    expect(keepAllocationsYoung(['--allocation_site_pretenuring'])).toBe(false)
    expect(keepAllocationsYoung(['--no-allocation-site-pretenuring'])).toBe(true)
    expect(keepAllocationsYoung(['--noallocation_site_pretenuring'])).toBe(true)
    expect(keepAllocationsYoung(['--no-allocation-site-pretenuring', '--allocation-site-pretenuring'])).toBe(false)
    expect(keepAllocationsYoung(['--allocation-site-pretenuring', '--no-allocation-site-pretenuring'])).toBe(true)
  })

  it('is turned off by the CLI, before any command runs', () => {
    expect(offInCli()).toBe(true)
  })

  it('is left on by the CLI when node is started with it on, and off when with it off', () => {
    expect(offInCli(['--allocation-site-pretenuring'])).toBe(false)
    expect(offInCli(['--allocation_site_pretenuring'])).toBe(false)
    expect(offInCli(['--allocation-site-pretenuring', '--no-allocation-site-pretenuring'])).toBe(true)
  })
})
