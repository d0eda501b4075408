// specserve eval end to end on the real demo models and their held-out splits: the
// accuracies are the ones scikit-learn measured when it trained them (models/manifest.json),
// a straggler profile moves the deadline-fallback to its fallback, bad data is refused
// with its line, and the report files are written.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { ConfigError } from '../../src/config/yaml.ts'
import { calibrate } from '../../src/eval/calibrate.ts'
import type { IsotonicFit, IsotonicMap, TemperatureFit } from '../../src/config/calibration.ts'
import { EvalInputError, readLabeledCsv } from '../../src/eval/data.ts'
import { parseLatencyProfile } from '../../src/eval/latency.ts'
import { writeReport } from '../../src/eval/report.ts'
import { runEval, type EnsembleReport } from '../../src/eval/run.ts'
import { configFrom, root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import '../starter/scripted.ts'

const config = configFrom(`
executors: { onnx_workers: 1 }
models:
  cancer-logreg: { kind: onnx, path: ../models/cancer_logreg.onnx }
  cancer-mlp: { kind: onnx, path: ../models/cancer_mlp.onnx }
  diabetes-linear: { kind: onnx, path: ../models/diabetes_linear.onnx }
  diabetes-knn: { kind: onnx, path: ../models/diabetes_knn.onnx }
ensembles:
  cancer:
    strategy: deadline-fallback
    models: [cancer-mlp, cancer-logreg]
    budget_ms: { default: 50, max: 200 }
  diabetes:
    strategy: { name: majority-vote, regression: mean }
    models: [diabetes-linear, diabetes-knn]
    budget_ms: { default: 200, max: 400 }
`)
const manifest = JSON.parse(readFileSync(join(root, 'models', 'manifest.json'), 'utf8')) as { models: Record<string, { accuracy_or_r2: number }> }
const cancerText = readFileSync(join(root, 'models', 'cancer_holdout.csv'), 'utf8')
const cancer = readLabeledCsv('cancer_holdout.csv', 'label', cancerText)
/** The header and the first `n` rows of a CSV, as another data set. */
const firstRows = (text: string, n: number) => readLabeledCsv('few.csv', 'label', text.split('\n').slice(0, n + 1).join('\n'))
const result = (report: EnsembleReport, target: string, budget: number) => report.results.find((r) => r.target === target && r.budget_ms === budget)!

describe('specserve eval', () => {
  it('scores the ensemble and each member alone at each budget; members score what scikit-learn measured', async () => {
    const [report] = await runEval(config, cancer, { ensembles: ['cancer'], budgets: [100, 200], warmup: 5 })
    expect(report!.metric).toBe('accuracy')
    expect(report!.results.map((r) => [r.target, r.budget_ms])).toEqual([
      ['cancer', 100], ['cancer-mlp', 100], ['cancer-logreg', 100],
      ['cancer', 200], ['cancer-mlp', 200], ['cancer-logreg', 200],
    ])
    // Budgets no stall of a shared CI box reaches: a miss here would change the scores.
    for (const budget of [100, 200]) {
      expect(result(report!, 'cancer-logreg', budget).score).toBeCloseTo(manifest.models['cancer_logreg']!.accuracy_or_r2, 3)
      expect(result(report!, 'cancer-mlp', budget).score).toBeCloseTo(manifest.models['cancer_mlp']!.accuracy_or_r2, 3)
      // Unhurried, the fallback ensemble answers with its preferred member: the MLP's accuracy.
      expect(result(report!, 'cancer', budget)).toMatchObject({ answered: 143, misses: 0, members: 2 })
      expect(result(report!, 'cancer', budget).score).toBeCloseTo(manifest.models['cancer_mlp']!.accuracy_or_r2, 3)
      expect(result(report!, 'cancer-mlp', budget).members_started).toBe(1)
    }
  })

  it('a straggler on the preferred member: the ensemble answers from the fallback in time, the member alone misses', async () => {
    const profile = parseLatencyProfile('cancer-mlp=300')
    const [report] = await runEval(config, firstRows(cancerText, 20), { ensembles: ['cancer'], budgets: [60], profile, warmup: 0 })
    expect(result(report!, 'cancer-mlp', 60)).toMatchObject({ misses: 20, answered: 0, score: 0 })
    expect(result(report!, 'cancer', 60)).toMatchObject({ misses: 0, answered: 20 })
    expect(result(report!, 'cancer', 60).score).toBe(result(report!, 'cancer-logreg', 60).score)
  })

  it('without --ensembles, scores every ensemble the data set fits', async () => {
    const reports = await runEval(config, firstRows(cancerText, 10), { warmup: 0 })
    expect(reports.map((r) => r.ensemble)).toEqual(['cancer'])
    const narrow = readLabeledCsv('narrow.csv', 'label', 'a,b,label\n1,2,0\n')
    await expect(runEval(config, narrow, {})).rejects.toThrow(/narrow\.csv:1: no ensemble of .* takes 2 feature columns/)
  })

  it('regression: MAE over the answered rows, the mean ensemble between its members', async () => {
    const data = readLabeledCsv(join(root, 'models', 'diabetes_holdout.csv'), 'target')
    const [report] = await runEval(config, data, { ensembles: ['diabetes'], warmup: 0 })
    expect(report!.metric).toBe('mae')
    const [ens, linear, knn] = report!.results
    expect(ens!.budget_ms).toBe(200)
    for (const r of [ens!, linear!, knn!]) expect(r.score).toBeGreaterThan(30)
    // The mean of two models is never worse than the worse one (the triangle inequality, row by row).
    expect(ens!.score).toBeLessThanOrEqual(Math.max(linear!.score, knn!.score) + 1e-6)
  })

  it('refuses a data set whose width does not match the ensemble (line 1), an unknown ensemble and a budget over the max', async () => {
    const digits = readLabeledCsv(join(root, 'models', 'digits_holdout.csv'), 'label')
    await expect(runEval(config, digits, { ensembles: ['cancer'] })).rejects.toThrow(
      /digits_holdout\.csv:1: 64 feature columns \(all but "label"\), but ensemble "cancer" takes input "input" FP32 \[-1, ?30\]/,
    )
    await expect(runEval(config, cancer, { ensembles: ['nope'] })).rejects.toBeInstanceOf(EvalInputError)
    await expect(runEval(config, cancer, { ensembles: ['cancer'], budgets: [500] })).rejects.toThrow(/500 ms is over ensemble "cancer"'s max of 200 ms/)
    await expect(runEval(config, cancer, { ensembles: ['cancer'], profile: parseLatencyProfile('ghost=5') })).rejects.toThrow(/no model "ghost"/)
  })

  it('refuses labels that are not the classes of the ensemble\'s probabilities, instead of scoring 0%', async () => {
    // The cancer labels shifted by one (0, 1 → 1, 2): every answer would count as wrong.
    const shifted = cancerText.split('\n').slice(0, 6).join('\n').replace(/,([01])$/gm, (_, k: string) => `,${Number(k) + 1}`)
    const data = readLabeledCsv('shifted.csv', 'label', shifted)
    await expect(runEval(config, data, { ensembles: ['cancer'], warmup: 0 })).rejects.toThrow(/^shifted\.csv:\d+: label 2 is not a class index 0\.\.1 of ensemble "cancer"'s probabilities$/)
    // Regression targets are values, not classes: no such check.
    const diabetes = readLabeledCsv(join(root, 'models', 'diabetes_holdout.csv'), 'target')
    expect(diabetes.truth.some((t) => t > 2)).toBe(true)
    await expect(runEval(config, diabetes, { ensembles: ['diabetes'], warmup: 0 })).resolves.toHaveLength(1)
  })

  it('writes report.json, report.md and one SVG per ensemble', async () => {
    const ensembles = await runEval(config, firstRows(cancerText, 20), { ensembles: ['cancer'], budgets: [10, 30], warmup: 0 })
    const dir = tempDir('specserve-eval-')
    const files = writeReport(dir, { config: 'c.yaml', data: 'few.csv', label: 'label', rows: 20, latency_profile: null, ensembles })
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['report.json', 'report.md', 'cancer.svg'])
    const json = JSON.parse(readFileSync(files[0]!, 'utf8')) as { ensembles: EnsembleReport[] }
    expect(json.ensembles[0]!.results).toHaveLength(6)
    const md = readFileSync(files[1]!, 'utf8')
    expect(md).toContain('| 10 | **cancer** (ensemble) |')
    expect(md).toMatch(/- 30 ms: cancer [\d.]+ (matches|beats|trails).* its best member cancer-(mlp|logreg)/)
    const svg = readFileSync(files[2]!, 'utf8')
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    // Five panels, three lines each (the ensemble and two members) across the two budgets.
    expect(svg.match(/<polyline /g)).toHaveLength(15)
  })
})

/** A best-quality ensemble of boosted trees and logistic regression, to calibrate. */
const BEST_OF_TWO = `models:
  cancer-logreg: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }
  cancer-gbdt: { kind: onnx, path: ${join(root, 'models', 'cancer_gbdt.onnx')} }
ensembles:
  best:
    strategy: best-quality
    models: [cancer-gbdt, cancer-logreg]
`

describe('specserve eval --calibrate', () => {
  it('fits a temperature per member, stores it beside the config, and the config reads it back', async () => {
    const dir = tempDir('specserve-calibrate-')
    const file = join(dir, 'c.yaml')
    writeFileSync(file, BEST_OF_TWO)
    const { path, models } = await calibrate(loadConfigFile(file), cancer, ['best'])
    expect(path).toBe(join(dir, 'c.calibration.json'))
    expect(Object.keys(models).sort()).toEqual(['cancer-gbdt', 'cancer-logreg'])
    for (const fit of Object.values(models) as TemperatureFit[]) {
      expect(fit.rows).toBe(143)
      expect(fit.nll_after).toBeLessThanOrEqual(fit.nll_before)
    }
    const reread = loadConfigFile(file)
    expect(reread.calibration.get('cancer-gbdt')).toBe((models['cancer-gbdt'] as TemperatureFit).temperature)
    writeFileSync(path, '{"models": {"cancer-gbdt": {"temperature": -1}}}')
    expect(() => loadConfigFile(file)).toThrow(ConfigError)
  })

  it('fits an isotonic map per member with --calibrate isotonic, which best-quality then reads', async () => {
    const dir = tempDir('specserve-isotonic-')
    const file = join(dir, 'c.yaml')
    writeFileSync(file, BEST_OF_TWO)
    const { path, models } = await calibrate(loadConfigFile(file), cancer, ['best'], 'isotonic')
    for (const fit of Object.values(models) as IsotonicFit[]) {
      expect(fit.rows).toBe(143)
      // The least-squares monotone fit is never further from the truth than the raw confidence.
      expect(fit.brier_after).toBeLessThanOrEqual(fit.brier_before)
      const { confidence, accuracy } = fit.isotonic
      for (let i = 1; i < confidence.length; i++) {
        expect(confidence[i]).toBeGreaterThan(confidence[i - 1]!)
        expect(accuracy[i]).toBeGreaterThanOrEqual(accuracy[i - 1]!)
      }
    }
    const map = loadConfigFile(file).calibration.get('cancer-logreg') as IsotonicMap
    expect(Array.from(map.accuracy)).toEqual((models['cancer-logreg'] as IsotonicFit).isotonic.accuracy)
    writeFileSync(path, '{"models": {"cancer-gbdt": {"isotonic": {"confidence": [0.9, 0.5], "accuracy": [0.5, 0.9]}}}}')
    expect(() => loadConfigFile(file)).toThrow(/isotonic needs confidence \(increasing\)/)
  })

  it('leaves out, and counts, rows whose probabilities are not finite; the file written is one the config accepts', async () => {
    const dir = tempDir('specserve-nonfinite-')
    const file = join(dir, 'c.yaml')
    writeFileSync(file, `models:\n  cancer-mlp: { kind: onnx, path: ${join(root, 'models', 'cancer_mlp.onnx')} }\nensembles:\n  mlp: { strategy: deadline-fallback, models: [cancer-mlp] }\n`)
    // 1e39 is a double, but no FP32: the MLP gets Infinity and answers NaN probabilities for those 3 rows.
    const lines = cancerText.split('\n')
    const overflowing = lines.slice(1, 4).map((line) => line.replace(/^[^,]+/, '1e39'))
    const data = readLabeledCsv('mixed.csv', 'label', [...lines.slice(0, 21), ...overflowing].join('\n'))
    for (const method of ['isotonic', 'temperature'] as const) {
      const { models, skipped } = await calibrate(loadConfigFile(file), data, ['mlp'], method)
      expect(skipped).toEqual({ 'cancer-mlp': 3 })
      expect(models['cancer-mlp']!.rows).toBe(20)
      const calibration = loadConfigFile(file).calibration.get('cancer-mlp')
      if (method === 'isotonic') expect(Array.from((calibration as IsotonicMap).confidence).every(Number.isFinite)).toBe(true)
      else expect(calibration).toBe((models['cancer-mlp'] as TemperatureFit).temperature)
      expect(Number.isFinite((models['cancer-mlp'] as TemperatureFit).nll_after ?? (models['cancer-mlp'] as IsotonicFit).brier_after)).toBe(true)
    }
  })

  it('writes nothing when a fit is not one the config would accept (a "probabilities" output above 1)', async () => {
    const dir = tempDir('specserve-unusable-')
    const file = join(dir, 'c.yaml')
    // A scripted model answering label 2 gives "probabilities" [-1, 2]: its confidence is 2.
    writeFileSync(file, 'models:\n  scores: { kind: scripted, label: 2 }\nensembles:\n  e: { strategy: deadline-fallback, models: [scores] }\n')
    const data = readLabeledCsv('two.csv', 'label', 'a,b,label\n1,2,0\n3,4,1\n')
    await expect(calibrate(loadConfigFile(file), data, ['e'], 'isotonic')).rejects.toThrow(
      /^--calibrate: the isotonic fit of scores is not usable \(models\.scores\.isotonic needs confidence .*\); nothing written$/,
    )
    expect(existsSync(join(dir, 'c.calibration.json'))).toBe(false)
    expect(() => loadConfigFile(file)).not.toThrow()
  })

  it('refuses labels that are not class indices of the probabilities', async () => {
    const bad = readLabeledCsv('bad.csv', 'label', cancerText.split('\n').slice(0, 3).join('\n').replace(/,0$/m, ',7').replace(/,1$/m, ',7'))
    await expect(calibrate(config, bad, ['cancer'])).rejects.toThrow(/bad\.csv:2: label 7 is not a class index 0\.\.1/)
  })
})
