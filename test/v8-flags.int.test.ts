// The gateway's process runs with V8's allocation-site pretenuring off (src/v8-flags.ts). What
// is checked is the effect: a place in the code whose objects V8 once found mostly alive
// keeps making them in the old generation with it on, and in the young one with it off.
import { execFileSync, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { KEEP_PRETENURING } from '../src/v8-flags.ts'
import { cli } from './cli-run.ts'
import { root } from './helpers.ts'
import { tempDir } from './temp-dirs.ts'

/**
 * MB of old generation that 100,000 short-lived objects from one literal take, after 400,000
 * from it were kept alive through four young collections (which is what tenures a place
 * when pretenuring is on): ~4.6 MB if they are born old, 0 if young. Needs --expose-gc.
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
    return (oldUsed() - before) / 2 ** 20 + last.i * 0
  }`

/**
 * The MB a fresh Node process measures, after `setup` (module code) has run. Single-threaded:
 * whether V8 tenures the place depends on when its optimizing compilers, on threads of their
 * own, finish with `make` (measured: 2 starts in 10 did not tenure it with them, 0 in 10 without).
 */
function measured(setup: string): number {
  const script = `${setup}\n${MEASURE}\nconsole.log(tenuredMb())`
  return Number(execFileSync(process.execPath, ['--expose-gc', '--single-threaded', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }).trim())
}

/**
 * Whether the CLI's own process (`specserve --version`) turned pretenuring off, read as it
 * exits from the module the CLI called (one module instance per process). Its effect in a
 * process is what the tests above measure; inside the CLI, other code compiling on V8's
 * threads makes that measure itself unreliable.
 */
function turnedOffInCli(nodeFlags: string[] = []): boolean {
  const probe = join(tempDir('specserve-v8-flags-'), 'probe.mjs')
  const module = pathToFileURL(join(root, 'src', 'v8-flags.ts')).href
  writeFileSync(probe, `const { pretenuringTurnedOff } = await import(${JSON.stringify(module)})\nprocess.on('exit', () => process.stderr.write('turned off: ' + pretenuringTurnedOff() + '\\n'))\n`)
  const run = spawnSync(process.execPath, [...nodeFlags, '--import', probe, cli, '--version'], { cwd: root, encoding: 'utf8' })
  expect(run.status).toBe(0)
  expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  const line = /^turned off: (true|false)$/m.exec(run.stderr)
  expect(line, run.stderr).not.toBeNull()
  return line![1] === 'true'
}

describe('allocation-site pretenuring', () => {
  it('tenures a place whose objects were found alive, by default (what the gateway turns off)', () => {
    expect(measured('')).toBeGreaterThan(2)
  })

  it('is off once keepAllocationsYoung has run: the same objects are born young', () => {
    const setup = `const { keepAllocationsYoung } = await import(${JSON.stringify(join(root, 'src', 'v8-flags.ts'))})\nif (!keepAllocationsYoung([])) throw new Error('not turned off')`
    expect(measured(setup)).toBeLessThan(0.5)
  })

  it('is turned off by the CLI, before any command runs', () => {
    expect(turnedOffInCli()).toBe(true)
  })

  it(`stays on when node is started with ${KEEP_PRETENURING}`, () => {
    expect(turnedOffInCli([KEEP_PRETENURING])).toBe(false)
    const setup = `const { keepAllocationsYoung } = await import(${JSON.stringify(join(root, 'src', 'v8-flags.ts'))})\nif (keepAllocationsYoung(['${KEEP_PRETENURING}'])) throw new Error('turned off')`
    expect(measured(setup)).toBeGreaterThan(2)
  })
})
