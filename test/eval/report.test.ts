// The eval report's verdicts: an ensemble against its best member alone, at each budget.
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bestMember, markdown, markdownCode, verdicts, writeReport } from '../../src/eval/report.ts'
import type { EnsembleReport, TargetResult } from '../../src/eval/run.ts'
import { tempDir } from '../temp-dirs.ts'

const result = (target: string, kind: TargetResult['kind'], score: number, budget = 5): TargetResult => ({
  target, kind, budget_ms: budget, score, answered: Number.isNaN(score) ? 0 : 10, misses: Number.isNaN(score) ? 10 : 0, failed: 0, abstained: 0, non_finite: 0,
  p50_ms: 0.1, p99_ms: 0.2, members_started: kind === 'ensemble' ? 2 : 1, members: kind === 'ensemble' ? 3 : 1,
})
const regression: EnsembleReport = {
  ensemble: 'reg', strategy: 'majority-vote', task: 'regression', metric: 'mae', models: ['a', 'b', 'c'],
  results: [result('reg', 'ensemble', 44.28), result('a', 'member', 45.91), result('b', 'member', 47.1), result('c', 'member', Number.NaN)],
}

describe('eval report', () => {
  it('the best member is the lowest MAE among members that answered', () => {
    expect(bestMember(regression, 5)?.target).toBe('a')
    expect(verdicts(regression)).toEqual(['5 ms: reg 44.28 beats by 1.63 MAE its best member a (45.91), starting 2.00 of 3 members per request; misses 0 vs 0'])
  })

  it('a target that answered no row: "no answers" and why, not "n/a trails by n/a"', () => {
    const none = (target: string, kind: TargetResult['kind']): TargetResult => ({ ...result(target, kind, Number.NaN), misses: 6, failed: 4 })
    const nothing: EnsembleReport = { ...regression, results: [none('reg', 'ensemble'), none('a', 'member'), none('b', 'member')] }
    expect(verdicts(nothing)).toEqual(['5 ms: reg no answers (all missed or failed), nor any member alone, starting 2.00 of 3 members per request; misses 6 vs 6'])
    const ensembleOnly: EnsembleReport = { ...regression, results: [none('reg', 'ensemble'), ...regression.results.slice(1)] }
    expect(verdicts(ensembleOnly)).toEqual(['5 ms: reg no answers (all missed or failed), its best member a (45.91), starting 2.00 of 3 members per request; misses 6 vs 0'])
    const membersNone: EnsembleReport = { ...regression, results: [regression.results[0]!, none('a', 'member'), none('b', 'member')] }
    expect(verdicts(membersNone)).toEqual(['5 ms: reg 44.28, no member alone answered (all missed or failed), starting 2.00 of 3 members per request; misses 0 vs 6'])
    // A classifier that answered nothing scores 0%, and is said to have answered nothing; abstentions are counted.
    const abstaining: EnsembleReport = {
      ...regression, metric: 'accuracy', task: 'classification',
      results: [{ ...result('vote', 'ensemble', 0), answered: 0, misses: 0, abstained: 10 }, result('a', 'member', 0.9), result('b', 'member', 0.8)],
    }
    expect(verdicts(abstaining)[0]).toBe('5 ms: reg no answers (10 abstained), its best member a (90.0), starting 2.00 of 3 members per request; misses 0 vs 0')
  })

  it('a member that answered no row ranks last, below one that answered every row wrong (accuracy 0 either way)', () => {
    const report: EnsembleReport = {
      ...regression, ensemble: 'e', task: 'classification', metric: 'accuracy',
      results: [result('e', 'ensemble', 0.5), { ...result('a', 'member', 0), answered: 0, misses: 10 }, result('b', 'member', 0)],
    }
    expect(bestMember(report, 5)?.target).toBe('b')
    expect(verdicts(report)[0]).toBe('5 ms: e 50.0 beats by 50.00 points its best member b (0.0), starting 2.00 of 3 members per request; misses 0 vs 0')
    // An MAE of 0 from no row is no perfect score either.
    const mae: EnsembleReport = { ...regression, results: [regression.results[0]!, { ...result('a', 'member', 0), answered: 0, misses: 10 }, result('b', 'member', 47.1)] }
    expect(bestMember(mae, 5)?.target).toBe('b')
  })

  it('an ensemble of one member: "of 1 member", not "of 1 members"', () => {
    const one: EnsembleReport = { ...regression, models: ['a'], results: [{ ...result('reg', 'ensemble', 44.28), members_started: 1, members: 1 }, result('a', 'member', 45.91)] }
    expect(verdicts(one)).toEqual(['5 ms: reg 44.28 beats by 1.63 MAE its best member a (45.91), starting 1.00 of 1 member per request; misses 0 vs 0'])
  })

  it('accuracy: points, a match within what the report shows', () => {
    const report: EnsembleReport = { ...regression, ensemble: 'e', task: 'classification', metric: 'accuracy', results: [result('e', 'ensemble', 0.98), result('a', 'member', 0.98001), result('b', 'member', 0.9)] }
    expect(verdicts(report)[0]).toMatch(/^5 ms: e 98\.0 matches its best member a \(98\.0\)/)
    const md = markdown({ config: 'c.yaml', data: 'd.csv', label: 'y', rows: 10, latency_profile: 'a=5', ensembles: [report] })
    expect(md).toContain('latency profile `a=5`')
    expect(md).toContain('| 5 | **e** (ensemble) | 98.0 | 10 | 0 | 0 | 0 / 0 | 0.10 | 0.20 | 2.00 / 3 |')
  })

  it('report.md escapes names: a | does not split a table cell, <b> is no tag, * no emphasis', () => {
    const ens: EnsembleReport = {
      ensemble: 'x|y *z* `q`', strategy: 'deadline-fallback', task: 'classification', metric: 'accuracy', models: ['wine<lr>&co', 'a_b_'],
      results: [result('x|y *z* `q`', 'ensemble', 0.9), result('wine<lr>&co', 'member', 0.95), result('a_b_', 'member', 0.8)],
    }
    const md = markdown({ config: 'c`d.yaml', data: 'd.csv', label: 'y', rows: 10, latency_profile: null, ensembles: [ens] })
    const rows = md.split('\n').filter((line) => line.startsWith('| 5 |'))
    // Cells are split at a | no backslash escapes: ten in every row.
    for (const row of rows) expect(row.split(/(?<!\\)\|/).slice(1, -1), row).toHaveLength(10)
    expect(rows[0]).toContain('| **x\\|y \\*z\\* \\`q\\`** (ensemble) |')
    expect(rows[1]).toContain('| wine\\<lr\\>\\&co |')
    expect(rows[2]).toContain('| a\\_b\\_ |')
    expect(md).toContain('## x\\|y \\*z\\* \\`q\\` (deadline-fallback, classification)')
    expect(md).toContain('- 5 ms: x\\|y \\*z\\* \\`q\\` 90.0 trails by 5.00 points its best member wine\\<lr\\>\\&co (95.0)')
    expect(md).toContain('![x\\|y \\*z\\* \\`q\\`](x_y__z___q_.svg)')
    expect(md).toContain('Config ``c`d.yaml``, data `d.csv`')
    // On stdout a verdict shows names as they are.
    expect(verdicts(ens)[0]).toMatch(/^5 ms: x\|y \*z\* `q` 90\.0 trails by 5\.00 points its best member wine<lr>&co \(95\.0\)/)
    expect(markdownCode('`a`')).toBe('`` `a` ``')
  })

  it('report.md says which rows were neither answered, missed nor failed, and the calibration file applied', () => {
    const ens: EnsembleReport = { ...regression, results: [{ ...result('reg', 'ensemble', 44.28), answered: 6, misses: 1, abstained: 2, non_finite: 1 }, ...regression.results.slice(1)] }
    const md = markdown({ config: 'c.yaml', data: 'd.csv', label: 'y', rows: 10, latency_profile: null, calibration: { file: 'c.calibration.json', models: ['a', 'b'] }, ensembles: [ens] })
    expect(md).toContain('| budget ms | target | MAE | answered | misses | failed | abstained / non-finite | p50 ms | p99 ms | members started |')
    expect(md).toContain('| 5 | **reg** (ensemble) | 44.28 | 6 | 1 | 0 | 2 / 1 | 0.10 | 0.20 | 2.00 / 3 |')
    expect(md).toContain(', calibration `c.calibration.json` (a, b).')
  })

  it('one plot file per ensemble, even where their names make the same file name', () => {
    const named = (ensemble: string): EnsembleReport => ({ ...regression, ensemble })
    const dir = tempDir('specserve-eval-report-')
    const report = { config: 'c.yaml', data: 'd.csv', label: 'y', rows: 10, latency_profile: null, ensembles: [named('fraud v2'), named('fraud/v2'), named('Fraud_v2')] }
    const files = writeReport(dir, report)
    expect(files.filter((f) => f.endsWith('.svg')).map((f) => f.slice(dir.length + 1))).toEqual(['fraud_v2.svg', 'fraud_v2-2.svg', 'Fraud_v2-3.svg'])
    expect(readdirSync(dir).filter((f) => f.endsWith('.svg'))).toHaveLength(3)
    const md = markdown(report)
    expect(md).toContain('![fraud v2](fraud_v2.svg)')
    expect(md).toContain('![fraud/v2](fraud_v2-2.svg)')
  })

  it('writes all the files or none: a name taken by a directory is refused before anything is written', () => {
    const dir = tempDir('specserve-eval-report-')
    const report = { config: 'c.yaml', data: 'd.csv', label: 'y', rows: 10, latency_profile: null, ensembles: [regression] }
    writeFileSync(join(dir, 'report.json'), 'an earlier run\n')
    mkdirSync(join(dir, 'reg.svg'))
    expect(() => writeReport(dir, report)).toThrow(`${join(dir, 'reg.svg')} is in the way: not a file`)
    expect(readdirSync(dir).sort()).toEqual(['reg.svg', 'report.json'])
    expect(readFileSync(join(dir, 'report.json'), 'utf8')).toBe('an earlier run\n')
  })

  it('replaces an earlier run\'s files, leaving no temporary file', () => {
    const dir = tempDir('specserve-eval-report-')
    const report = { config: 'c.yaml', data: 'd.csv', label: 'y', rows: 10, latency_profile: null, ensembles: [regression] }
    writeFileSync(join(dir, 'report.md'), 'an earlier run\n')
    expect(writeReport(dir, report).map((f) => f.slice(dir.length + 1))).toEqual(['report.json', 'report.md', 'reg.svg'])
    expect(readdirSync(dir).sort()).toEqual(['reg.svg', 'report.json', 'report.md'])
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/^# specserve eval/)
  })

  it('writes through a link (it stays a link, its target replaced, no temporary file left beside either); a link to a directory is in the way', () => {
    const dir = tempDir('specserve-eval-report-')
    const elsewhere = tempDir('specserve-eval-report-target-')
    const report = { config: 'c.yaml', data: 'd.csv', label: 'y', rows: 10, latency_profile: null, ensembles: [regression] }
    writeFileSync(join(elsewhere, 'kept.md'), 'an earlier run\n')
    symlinkSync(join(elsewhere, 'kept.md'), join(dir, 'report.md'))
    writeReport(dir, report)
    expect(lstatSync(join(dir, 'report.md')).isSymbolicLink()).toBe(true)
    expect(readFileSync(join(elsewhere, 'kept.md'), 'utf8')).toMatch(/^# specserve eval/)
    expect(readdirSync(elsewhere)).toEqual(['kept.md'])
    expect(readdirSync(dir).sort()).toEqual(['reg.svg', 'report.json', 'report.md'])

    const again = tempDir('specserve-eval-report-')
    mkdirSync(join(elsewhere, 'plots'))
    symlinkSync(join(elsewhere, 'plots'), join(again, 'reg.svg'))
    expect(() => writeReport(again, report)).toThrow(`${join(again, 'reg.svg')} is in the way: not a file`)
    expect(readdirSync(again)).toEqual(['reg.svg'])
    expect(readdirSync(join(elsewhere, 'plots'))).toEqual([])
  })

  it('a write failing once temporary files exist: they are removed, an earlier run\'s files left as they were', () => {
    const dir = tempDir('specserve-eval-report-')
    // A plot name of 252 characters is a file name; its temporary name (a suffix more) is too long for one (ENAMETOOLONG), after report.json's and report.md's were written.
    const report = { config: 'c.yaml', data: 'd.csv', label: 'y', rows: 10, latency_profile: null, ensembles: [{ ...regression, ensemble: 'e'.repeat(248) }] }
    writeFileSync(join(dir, 'report.json'), 'an earlier run\n')
    writeFileSync(join(dir, 'report.md'), 'an earlier run\n')
    expect(() => writeReport(dir, report)).toThrow(/ENAMETOOLONG/)
    expect(readdirSync(dir).sort()).toEqual(['report.json', 'report.md'])
    expect(readFileSync(join(dir, 'report.json'), 'utf8')).toBe('an earlier run\n')
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe('an earlier run\n')
  })
})
