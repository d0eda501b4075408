// What eval scores and what it writes, where a model or a flag is not the demo's: a label
// output numbered otherwise than the probabilities' columns, answers that are not finite, a
// member that never answers, and flags that would only fail after the run (or after the
// calibration file is written).
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { calibrate } from '../../src/eval/calibrate.ts'
import { evalMain } from '../../src/eval/cli.ts'
import { readLabeledCsv } from '../../src/eval/data.ts'
import { parseLatencyProfile } from '../../src/eval/latency.ts'
import { runEval } from '../../src/eval/run.ts'
import { root } from '../helpers.ts'
import { printed } from '../console-output.ts'
import { tempDir } from '../temp-dirs.ts'
import '../starter/scripted.ts'

/** A config file of scripted models (YAML lines) and ensembles, in a directory of its own, with a CSV of two features beside it. */
function setup(models: string, ensembles: string): { dir: string; file: string; csv: string } {
  const dir = tempDir('specserve-eval-scoring-')
  const file = join(dir, 'c.yaml')
  writeFileSync(file, `models:\n${models}\nensembles:\n${ensembles}\n`)
  const csv = join(dir, 'two.csv')
  writeFileSync(csv, 'a,b,label\n1,2,1\n3,4,1\n')
  return { dir, file, csv }
}

/** evalMain's exit code and what it printed. */
const specserveEval = (args: string[]): Promise<{ code: number; out: string; err: string }> => printed(() => evalMain(args))

afterEach(() => vi.restoreAllMocks())

describe('eval scoring', () => {
  it('scores a classifier by its probabilities\' argmax, the class index its labels are checked against, not by a label output numbered otherwise', async () => {
    // As scikit-learn trained on classes 1 and 2: label output 2 is probabilities column 1.
    const { file, csv } = setup('  scores: { kind: scripted, label: 2 }', '  e: { strategy: deadline-fallback, models: [scores] }')
    const [report] = await runEval(loadConfigFile(file), readLabeledCsv(csv, 'label'), { ensembles: ['e'], warmup: 0 })
    expect(report!.results.map((r) => [r.target, r.score])).toEqual([['e', 1], ['scores', 1]])
  })

  it('scores the output a majority vote\'s output: option names: a float output is voted, and scored, as a regression', async () => {
    const { dir, file } = setup('  a: { kind: scripted, label: 1, extra_output: true }\n  b: { kind: scripted, label: 0, extra_output: true }', '  v: { strategy: { name: majority-vote, output: extra }, models: [a, b] }')
    const csv = join(dir, 'values.csv')
    writeFileSync(csv, 'a,b,value\n1,2,7\n3,4,5\n')
    const [report] = await runEval(loadConfigFile(file), readLabeledCsv(csv, 'value'), { ensembles: ['v'], warmup: 0 })
    // Every model answers extra = 7: off by 0 and by 2.
    expect([report!.task, report!.metric]).toEqual(['regression', 'mae'])
    expect(report!.results.map((r) => [r.target, r.score])).toEqual([['v', 1], ['a', 1], ['b', 1]])
  })

  it('an answer whose probabilities are not finite is no answer: not counted answered, never a hit', async () => {
    const dir = tempDir('specserve-eval-scoring-')
    const file = join(dir, 'c.yaml')
    writeFileSync(file, `models:\n  cancer-mlp: { kind: onnx, path: ${join(root, 'models', 'cancer_mlp.onnx')} }\nensembles:\n  mlp: { strategy: deadline-fallback, models: [cancer-mlp] }\n`)
    // 1e39 is a double, but no FP32: the MLP gets Infinity and answers NaN probabilities for those 3 rows, labelled 0 (NaN's argmax).
    const lines = readFileSync(join(root, 'models', 'cancer_holdout.csv'), 'utf8').split('\n')
    const overflowing = lines.slice(1, 4).map((line) => line.replace(/^[^,]+/, '1e39').replace(/,[01]$/, ',0'))
    const data = readLabeledCsv('mixed.csv', 'label', [...lines.slice(0, 21), ...overflowing].join('\n'))
    const config = loadConfigFile(file)
    const warnings: string[] = []
    const [report] = await runEval(config, data, { ensembles: ['mlp'], warmup: 0, warn: (message) => warnings.push(message) })
    // Said once the input is known to be FP32.
    expect(warnings).toEqual(['mixed.csv:22: 1e+39 in column "f0" is beyond FP32\'s range (±3.4e38): ensemble mlp takes FP32 and gets Infinity there (2 more cells too)'])
    // The hits are the 20 finite rows' own: the 3 NaN rows, labelled 0, add none.
    const [clean] = await runEval(config, readLabeledCsv('clean.csv', 'label', lines.slice(0, 21).join('\n')), { ensembles: ['mlp'], warmup: 0 })
    for (const [i, result] of report!.results.entries()) {
      expect(result.answered, result.target).toBe(20)
      expect([result.misses, result.failed, result.abstained, result.non_finite], result.target).toEqual([0, 0, 0, 3])
      expect(Math.round(result.score * data.rows), result.target).toBe(Math.round(clean!.results[i]!.score * 20))
    }
  })
})

describe('eval warnings of features beyond an input\'s float range', () => {
  it('none for an FP64 input: 1e39 is a double', async () => {
    const { file, dir } = setup('  wide: { kind: scripted, label: 1, input: { datatype: FP64, shape: [-1, 2] } }', '  e: { strategy: deadline-fallback, models: [wide] }')
    const csv = join(dir, 'big.csv')
    writeFileSync(csv, 'a,b,label\n1,2,1\n1e39,2,1\n')
    const warnings: string[] = []
    await runEval(loadConfigFile(file), readLabeledCsv(csv, 'label'), { warmup: 0, warn: (message) => warnings.push(message) })
    expect(warnings).toEqual([])
  })
})

describe('eval rows neither answered, missed nor failed', () => {
  it('counts a vote that abstains (on_no_majority: abstain) as abstained: answered + misses + failed + abstained + non-finite = rows', async () => {
    const { file, csv } = setup(
      '  zero: { kind: scripted, label: 0 }\n  one: { kind: scripted, label: 1 }',
      '  split: { strategy: { name: majority-vote, quorum: all, on_no_majority: abstain }, models: [zero, one] }',
    )
    const [report] = await runEval(loadConfigFile(file), readLabeledCsv(csv, 'label'), { warmup: 0 })
    expect(report!.results.map((r) => [r.target, r.answered, r.misses, r.failed, r.abstained, r.non_finite])).toEqual([
      ['split', 0, 0, 0, 2, 0],
      ['zero', 2, 0, 0, 0, 0],
      ['one', 2, 0, 0, 0, 0],
    ])
  })
})

describe('eval flags checked before anything is written', () => {
  it('--latency-profile naming a model no evaluated ensemble runs is refused, not ignored', async () => {
    const { file, csv } = setup('  a: { kind: scripted }\n  b: { kind: scripted }', '  e1: { strategy: deadline-fallback, models: [a] }\n  e2: { strategy: deadline-fallback, models: [b] }')
    const run = runEval(loadConfigFile(file), readLabeledCsv(csv, 'label'), { ensembles: ['e1'], profile: parseLatencyProfile('b=5'), warmup: 0 })
    await expect(run).rejects.toThrow('--latency-profile: "b" is a member of no ensemble evaluated (e1)')
  })

  it('--calibrate with a budget over the max: exit 2, and no calibration file written', async () => {
    const { dir, file, csv } = setup('  a: { kind: scripted, label: 1 }', '  e: { strategy: deadline-fallback, models: [a], budget_ms: { default: 50, max: 100 } }')
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--budgets', '500', '--calibrate', '--out', join(dir, 'out')])
    expect(run.code).toBe(2)
    expect(run.err).toContain('--budgets: 500 ms is over ensemble "e"\'s max of 100 ms')
    expect(existsSync(join(dir, 'c.calibration.json'))).toBe(false)
  })

  it('an ensemble or a budget given twice is refused (it would be run, and reported, twice), as --columns refuses a column twice', async () => {
    const { file, csv } = setup('  a: { kind: scripted }', '  e: { strategy: deadline-fallback, models: [a] }')
    const config = loadConfigFile(file)
    const data = readLabeledCsv(csv, 'label')
    await expect(runEval(config, data, { ensembles: ['e', 'e'], warmup: 0 })).rejects.toThrow('--ensembles: ensemble "e" is named twice')
    await expect(runEval(config, data, { budgets: [10, 20, 10], warmup: 0 })).rejects.toThrow('--budgets: 10 ms is given twice')
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--budgets', '10,10.0', '--out', join(tempDir('specserve-eval-out-'), 'r')])
    expect([run.code, run.err]).toEqual([2, 'specserve eval: --budgets: 10 ms is given twice'])
  })

  it('--calibrate followed by a word that is no method says so, as --calibrate= does', async () => {
    const { file, csv } = setup('  a: { kind: scripted }', '  e: { strategy: deadline-fallback, models: [a] }')
    for (const flag of [['--calibrate', 'platt'], ['--calibrate=platt']]) {
      const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', ...flag])
      expect(run.code).toBe(2)
      expect(run.err).toMatch(/^specserve eval: --calibrate: "platt" is not temperature or isotonic\n/)
    }
  })

  it('--out under a file: refused before the run, exit 2', async () => {
    const { dir, file, csv } = setup('  a: { kind: scripted }', '  e: { strategy: deadline-fallback, models: [a] }')
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--out', join(csv, 'report')])
    expect(run.code).toBe(2)
    expect(run.err).toBe(`specserve eval: --out ${join(csv, 'report')}: ${csv} is not a directory`)
    expect(existsSync(join(dir, 'report'))).toBe(false)
  })

  it('--out that cannot be made (a name longer than a file name can be): exit 2 before the run, no calibration file written', async () => {
    const { dir, file, csv } = setup('  a: { kind: scripted, label: 1 }', '  e: { strategy: deadline-fallback, models: [a] }')
    const out = join(dir, 'new', 'x'.repeat(300))
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--calibrate', '--out', out])
    expect(run.code).toBe(2)
    expect(run.err).toMatch(/^specserve eval: --out \S+: cannot write the report there: ENAMETOOLONG/)
    expect(run.out).toBe('')
    expect(existsSync(join(dir, 'c.calibration.json'))).toBe(false)
    expect(existsSync(join(dir, 'new'))).toBe(false)
  })

  it('--out is made before the run, and left out when the command is refused after all', async () => {
    const { dir, file, csv } = setup('  a: { kind: scripted, label: 1 }', '  e: { strategy: deadline-fallback, models: [a], budget_ms: { default: 50, max: 100 } }')
    const refused = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--budgets', '500', '--out', join(dir, 'r', 'out')])
    expect(refused.code).toBe(2)
    expect(existsSync(join(dir, 'r'))).toBe(false)
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--out', join(dir, 'r', 'out')])
    expect(run.code, run.err).toBe(0)
    expect(readdirSync(join(dir, 'r', 'out')).sort()).toEqual(['e.svg', 'report.json', 'report.md'])
  })

  it('a report that cannot be written after the run: the verdicts are printed all the same, and no report file is left half written', async () => {
    const { dir, file, csv } = setup('  a: { kind: scripted, label: 1 }', '  e: { strategy: deadline-fallback, models: [a] }')
    const out = join(dir, 'out')
    mkdirSync(join(out, 'e.svg'), { recursive: true })
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--out', out])
    expect(run.code).toBe(2)
    expect(run.out).toMatch(/^\d+ ms: e 100\.0 matches its best member a \(100\.0\)/)
    expect(run.err).toBe(`specserve eval: --out ${out}: cannot write the report: ${join(out, 'e.svg')} is in the way: not a file`)
    expect(readdirSync(out)).toEqual(['e.svg'])
  })

  it('a calibration file that cannot be written: exit 2 with the reason, not a stack', async () => {
    const { dir, file: short, csv } = setup('  a: { kind: scripted, label: 1 }', '  e: { strategy: deadline-fallback, models: [a] }')
    // A config name that leaves no room for "<name>.calibration.json" within a file name's 255 bytes:
    // the loader reads that as no calibration (as it reads none), and the write fails (root writes through any permission).
    const file = join(dir, `${'c'.repeat(240)}.yaml`)
    renameSync(short, file)
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--calibrate', '--out', join(dir, 'out')])
    expect(run.code).toBe(2)
    expect(run.err).toMatch(new RegExp(`^specserve eval: --calibrate: cannot write the calibration file beside ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `))
  })

  it('a calibration file that is a link stays one: its target gets the fit', async () => {
    const { dir, file, csv } = setup('  a: { kind: scripted, label: 1 }', '  e: { strategy: deadline-fallback, models: [a] }')
    const target = join(tempDir('specserve-eval-target-'), 'fits.json')
    writeFileSync(target, '{"models":{}}\n')
    symlinkSync(target, join(dir, 'c.calibration.json'))
    await calibrate(loadConfigFile(file), readLabeledCsv(csv, 'label'), ['e'])
    expect(lstatSync(join(dir, 'c.calibration.json')).isSymbolicLink()).toBe(true)
    expect(Object.keys((JSON.parse(readFileSync(target, 'utf8')) as { models: object }).models)).toEqual(['a'])
  })

  it('--calibrate warns when the rows do not pin a temperature down: an end of the range searched fits them as well', async () => {
    // Right on both rows, with all its weight on the right class: any sharper or flatter map fits as well.
    const { dir, file, csv } = setup('  sure: { kind: scripted, label: 1 }', '  e: { strategy: best-quality, models: [sure] }')
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--calibrate', '--out', join(dir, 'out')])
    expect(run.code, run.out + run.err).toBe(0)
    expect(run.err, run.out).toMatch(/^warning: sure's temperature [\d.]+ is not pinned down by its rows: an end of the range searched \(0\.05 to 50\) fits them as well/m)
  })

  it('--calibrate names a member that answered no row, instead of leaving it out silently', async () => {
    const { file, csv } = setup('  down: { kind: scripted, fail: unreachable }', '  e: { strategy: deadline-fallback, models: [down] }')
    const fitted = await calibrate(loadConfigFile(file), readLabeledCsv(csv, 'label'), ['e'])
    expect(fitted.models).toEqual({})
    expect(fitted.unanswered).toEqual({ down: 2 })
    const run = await specserveEval(['-c', file, '--data', csv, '--label', 'label', '--calibrate', '--out', join(tempDir('specserve-eval-out-'), 'r')])
    expect(run.out).toContain('not calibrated down: it answered none of the 2 rows (each failed or was over the budget)')
  })
})
