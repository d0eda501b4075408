// specserve eval's flags refused before anything is read or run: exit 2 with one line saying
// what is wrong (and the usage, for a flag that is no value at all).
import { existsSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { evalMain, nonFiniteOnly } from '../../src/eval/cli.ts'
import { printed } from '../console-output.ts'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

/** evalMain's exit code and what it printed, on a data set that is never read (the flags are refused first). */
const specserveEval = (...flags: string[]) => printed(() => evalMain(['--data', 'never-read.csv', '--label', 'label', ...flags]))

afterEach(() => {
  vi.restoreAllMocks()
})

describe('specserve eval flags', () => {
  it('--out "" is refused with the usage, not read as the working directory', async () => {
    for (const out of ['', ' ']) {
      const run = await specserveEval('--out', out)
      expect(run.code).toBe(2)
      expect(run.err).toMatch(/^specserve eval: --out: give a directory for the report \(the name is empty\)\nusage:\n {2}specserve eval /)
      expect(run.out).toBe('')
    }
  })

  it('--budgets takes numbers as a CSV cell does: no hex, no empty item', async () => {
    const refused = async (budgets: string): Promise<string> => {
      const run = await specserveEval('--budgets', budgets)
      expect(run.code, budgets).toBe(2)
      return run.err
    }
    expect(await refused('0x10')).toBe('specserve eval: --budgets: "0x10" is not a positive number of ms')
    expect(await refused('5,1e1,0b11')).toBe('specserve eval: --budgets: "0b11" is not a positive number of ms')
    expect(await refused('Infinity')).toBe('specserve eval: --budgets: "Infinity" is not a positive number of ms')
    expect(await refused('5,,10')).toBe('specserve eval: --budgets: "5,,10" has an empty item; give budgets in ms separated by commas, e.g. --budgets 5,10,20')
    expect(await refused('5,10,')).toBe('specserve eval: --budgets: "5,10," has an empty item; give budgets in ms separated by commas, e.g. --budgets 5,10,20')
    expect(await refused(' ')).toBe('specserve eval: --budgets: give at least one budget in ms, e.g. --budgets 5,10,20')
    expect(await refused('0,5')).toBe('specserve eval: --budgets: "0" is not a positive number of ms')
  })

  it('--ensembles and --columns refuse an empty item or none at all, before anything is read or made', async () => {
    const out = join(tempDir('specserve-eval-cli-'), 'out')
    const refused = async (flag: string, list: string): Promise<string> => {
      const run = await specserveEval('--out', out, flag, list)
      expect(run.code, `${flag} ${list}`).toBe(2)
      expect(existsSync(out)).toBe(false)
      return run.err
    }
    for (const list of ['a,,b', 'a,', ',a', 'a, ,b']) {
      expect(await refused('--ensembles', list)).toBe(`specserve eval: --ensembles: "${list}" has an empty item; give ensemble names separated by commas, e.g. --ensembles a,b`)
      expect(await refused('--columns', list)).toBe(`specserve eval: --columns: "${list}" has an empty item; give feature columns separated by commas, e.g. --columns f0,f1,f2`)
    }
    for (const list of ['', ' ']) {
      expect(await refused('--ensembles', list)).toBe('specserve eval: --ensembles: give at least one ensemble name, e.g. --ensembles a,b')
      expect(await refused('--columns', list)).toBe('specserve eval: --columns: give at least one feature column, e.g. --columns f0,f1,f2')
    }
  })

  it('checks every list flag before it makes --out: a file in the way of --out is not the error reported', async () => {
    const dir = tempDir('specserve-eval-cli-')
    writeFileSync(join(dir, 'afile'), '')
    const out = join(dir, 'afile', 'x')
    for (const [flag, list, message] of [
      ['--ensembles', 'a,,b', '--ensembles: "a,,b" has an empty item'],
      ['--columns', 'a,', '--columns: "a," has an empty item'],
      ['--budgets', '5,,10', '--budgets: "5,,10" has an empty item'],
      ['--latency-profile', 'a=1,,', '--latency-profile: "a=1,," has an empty item'],
    ] as const) {
      const run = await specserveEval('--out', out, flag, list)
      expect(run.code, flag).toBe(2)
      expect(run.err, flag).toContain(`specserve eval: ${message}`)
    }
  })

  it('names paths as they were given: a file in the way of --out, the config of an unknown ensemble', async () => {
    const dir = tempDir('specserve-eval-cli-')
    writeFileSync(join(dir, 'x.csv'), 'a,label\n1,0\n')
    const out = relative(process.cwd(), join(dir, 'x.csv', 'r'))
    const blocked = await specserveEval('--out', out)
    expect(blocked.err).toBe(`specserve eval: --out ${out}: ${relative(process.cwd(), join(dir, 'x.csv'))} is not a directory`)
    const config = relative(process.cwd(), join(root, 'examples', 'demo.yaml'))
    const unknown = await printed(() =>
      evalMain(['-c', config, '--data', join(root, 'models', 'wine_holdout.csv'), '--label', 'label', '--ensembles', 'nope', '--out', join(dir, 'out')]),
    )
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(new RegExp(`^specserve eval: --ensembles: no ensemble "nope" in ${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(cancer, `))
    expect(existsSync(join(dir, 'out'))).toBe(false)
  })

  it('a member whose answers were all non-finite: "every row it answered" when other rows went unanswered, not "its 1 row" or "all N rows"', () => {
    expect(nonFiniteOnly('m', 30, undefined)).toBe('not calibrated m: its probabilities were non-finite on all 30 rows')
    expect(nonFiniteOnly('m', 1, undefined)).toBe('not calibrated m: its probabilities were non-finite on its 1 row')
    expect(nonFiniteOnly('m', 1, 5)).toBe('not calibrated m: its probabilities were non-finite on every row it answered (1 row); 5 rows left out: no answer')
  })
})
