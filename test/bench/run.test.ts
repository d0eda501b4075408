// `specserve bench`'s command line (bench/run.ts benchMain): a mistake is one line on stderr,
// exit 2, and nothing is measured or written.
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { benchMain, scenarios } from '../../bench/run.ts'
import { printed } from '../console-output.ts'
import { tempDir } from '../temp-dirs.ts'

/** benchMain's exit code and what it printed. */
const bench = (args: string[]): Promise<{ code: number | void; out: string; err: string }> => printed(() => benchMain(args))

afterEach(() => vi.restoreAllMocks())

describe('specserve bench: usage errors', () => {
  it('--only naming no scenario: exit 2 listing the scenarios, no report written', async () => {
    const out = tempDir('specserve-bench-only-')
    const run = await bench(['--only', 'overhed', '--quick', '--no-profile', '--out', out])
    expect(run.code).toBe(2)
    expect(run.err).toBe(`specserve bench: --only: no scenario "overhed" (scenarios: ${scenarios.map((s) => s.id).join(', ')}) (see --help)`)
    expect(readdirSync(out)).toEqual([])
  })

  it('--only with an empty item (a typo, not a scenario left out): exit 2 naming it, no report written', async () => {
    const out = tempDir('specserve-bench-only-')
    const run = await bench(['--only', 'overhead,,grpc', '--quick', '--no-profile', '--out', out])
    expect(run.code).toBe(2)
    expect(run.err).toMatch(/^specserve bench: --only: "overhead,,grpc" has an empty item; give scenarios separated by commas, e\.g\. --only overhead,ensembles /)
    expect(readdirSync(out)).toEqual([])
  })

  it('an unknown flag: exit 2, one line', async () => {
    const run = await bench(['--bogus'])
    expect(run.code).toBe(2)
    expect(run.err).toMatch(/^specserve bench: Unknown option '--bogus'[^\n]* \(see --help\)$/)
  })

  it('--report with no results to re-render: exit 2 naming the file, nothing written', async () => {
    const out = tempDir('specserve-bench-report-')
    const run = await bench(['--report', '--out', out])
    expect(run.code).toBe(2)
    expect(run.err).toBe(`specserve bench: --report: cannot read ${join(out, 'bench', 'results.json')}: no such file (run the bench first, with the same --out) (see --help)`)
    expect(existsSync(join(out, 'BENCHMARKS.md'))).toBe(false)
  })
})
