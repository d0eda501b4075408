// `specserve eval` as a user runs it (evalMain: the exit code, what it prints, the report it
// writes) on a config that serves several data sets: without --ensembles only the ensembles
// the data set fits are checked against --budgets and loaded; --columns maps columns to the input.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { calibrate } from '../../src/eval/calibrate.ts'
import { evalMain } from '../../src/eval/cli.ts'
import { readLabeledCsv } from '../../src/eval/data.ts'
import type { EvalReport } from '../../src/eval/report.ts'
import { printed } from '../console-output.ts'
import { freePort, root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import '../starter/scripted.ts'

const model = (file: string): string => join(root, 'models', file)
const cancerCsv = join(root, 'examples', 'cancer_holdout.csv')

/** A config of a wine ensemble (13 features, budget max 100 ms) and a cancer one (30 features, max 500 ms), written to a temp dir. */
function twoDataSets(wineMembers = '[wine-logreg, wine-tree]', extraModels = ''): string {
  const file = join(tempDir('specserve-eval-fit-'), 'two.yaml')
  writeFileSync(
    file,
    `models:
  wine-logreg: { kind: onnx, path: ${model('wine_logreg.onnx')} }
  wine-tree: { kind: onnx, path: ${model('wine_tree.onnx')} }
  cancer-logreg: { kind: onnx, path: ${model('cancer_logreg.onnx')} }
  cancer-mlp: { kind: onnx, path: ${model('cancer_mlp.onnx')} }
${extraModels}ensembles:
  wine:
    strategy: majority-vote
    models: ${wineMembers}
    budget_ms: { default: 50, max: 100 }
  cancer:
    strategy: deadline-fallback
    models: [cancer-mlp, cancer-logreg]
    budget_ms: { default: 50, max: 500 }
`,
  )
  return file
}

/** A remote member on a port nothing listens on: its load fails at once (connection refused). */
const unreachable = async (name: string): Promise<string> => `  ${name}: { kind: oip, url: "http://127.0.0.1:${await freePort()}", model: ${name} }\n`

/** Runs `specserve eval` in-process: its exit code and what it printed. */
async function specserveEval(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, out, err } = await printed(() => evalMain(args))
  return { code, stdout: out, stderr: err }
}

const reportOf = (dir: string): EvalReport => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as EvalReport

afterEach(() => {
  vi.restoreAllMocks()
})

describe('specserve eval without --ensembles: the ensembles the data set fits', () => {
  it('--budgets is checked against those alone: 300 ms, over wine\'s max but not cancer\'s, runs cancer', async () => {
    const out = tempDir('specserve-eval-out-')
    const run = await specserveEval(['-c', twoDataSets(), '--data', cancerCsv, '--label', 'target', '--budgets', '300', '--out', out])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^300 ms: cancer [\d.]+ (matches|beats|trails).* its best member cancer-(mlp|logreg)/m)
    expect(run.stdout).not.toContain('wine')
    expect(reportOf(out).ensembles.map((e) => [e.ensemble, e.results[0]!.budget_ms])).toEqual([['cancer', 300]])
  })

  it('an ensemble the data set does not fit has no other member loaded: its unreachable remote member fails nothing', async () => {
    const config = twoDataSets('[wine-remote, wine-logreg]', await unreachable('wine-remote'))
    const out = tempDir('specserve-eval-out-')
    const run = await specserveEval(['-c', config, '--data', cancerCsv, '--label', 'target', '--out', out])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(reportOf(out).ensembles.map((e) => e.ensemble)).toEqual(['cancer'])
  })

  it('an ensemble whose first member takes any width is judged by a sibling with a fixed one: 13 columns keep it off 30-column data', async () => {
    const input = (width: number): string => `input: { name: input, datatype: FP32, shape: [-1, ${width}] }`
    const config = twoDataSets('[any-width, thirteen]', `  any-width: { kind: scripted, ${input(-1)} }\n  thirteen: { kind: scripted, ${input(13)} }\n`)
    const out = tempDir('specserve-eval-out-')
    const run = await specserveEval(['-c', config, '--data', cancerCsv, '--label', 'target', '--out', out])
    expect(run.stderr).toBe('')
    expect(reportOf(out).ensembles.map((e) => e.ensemble)).toEqual(['cancer'])
  })

  it('an ensemble none of whose members loads is kept: its load error is the run\'s (exit 2)', async () => {
    const config = twoDataSets('[wine-remote]', await unreachable('wine-remote'))
    const run = await specserveEval(['-c', config, '--data', cancerCsv, '--label', 'target', '--out', tempDir('specserve-eval-out-')])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/models\.wine-remote.*failed to load/)
  })

  it('an ensemble named with --ensembles is still refused when the data set does not fit it or a budget is over its max', async () => {
    const config = twoDataSets()
    const args = ['-c', config, '--data', cancerCsv, '--label', 'target', '--out', tempDir('specserve-eval-out-')]
    const wine = await specserveEval([...args, '--ensembles', 'wine'])
    expect(wine.code).toBe(2)
    expect(wine.stderr).toMatch(/^specserve eval: .*cancer_holdout\.csv:1: 30 feature columns \(all but "target"\), but ensemble "wine" takes input "input" FP32 \[-1, ?13\]$/)
    const over = await specserveEval([...args, '--ensembles', 'wine,cancer', '--budgets', '300'])
    expect(over.code).toBe(2)
    expect(over.stderr).toBe('specserve eval: --budgets: 300 ms is over ensemble "wine"\'s max of 100 ms (budget_ms.max)')
  })

  it('--calibrate fits the members of those ensembles alone', async () => {
    const file = twoDataSets()
    const { models } = await calibrate(loadConfigFile(file), readLabeledCsv(cancerCsv, 'target'), undefined)
    expect(Object.keys(models).sort()).toEqual(['cancer-logreg', 'cancer-mlp'])
  })
})

describe('specserve eval --columns', () => {
  /** The cancer split with an id (text) column first, the label second and the features in reverse order. */
  function reshuffled(): { file: string; features: string[] } {
    const [header, ...rows] = readFileSync(cancerCsv, 'utf8').trim().split('\n')
    const names = header!.split(',')
    const label = names.length - 1
    const order = (cells: string[]): string[] => [cells[label]!, ...cells.slice(0, label).reverse()]
    const file = join(tempDir('specserve-eval-columns-'), 'shuffled.csv')
    writeFileSync(file, [['id', ...order(names)], ...rows.map((r, i) => [`row-${i}`, ...order(r.split(','))])].map((cells) => cells.join(',')).join('\n') + '\n')
    return { file, features: names.slice(0, label) }
  }

  it('feeds the columns named, in that order, leaving the others unread: the scores of the file in input order', async () => {
    const { file, features } = reshuffled()
    const config = twoDataSets()
    const plain = tempDir('specserve-eval-out-')
    const mapped = tempDir('specserve-eval-out-')
    expect((await specserveEval(['-c', config, '--data', cancerCsv, '--label', 'target', '--budgets', '300', '--out', plain])).code).toBe(0)
    const run = await specserveEval(['-c', config, '--data', file, '--label', 'target', '--columns', features.join(','), '--budgets', '300', '--out', mapped])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const report = reportOf(mapped)
    expect(report.columns).toEqual(features)
    const scores = (r: EvalReport) => r.ensembles.flatMap((e) => e.results.map((t) => [t.target, t.score, t.answered]))
    expect(scores(report)).toEqual(scores(reportOf(plain)))
    expect(readFileSync(join(mapped, 'report.md'), 'utf8')).toContain(`feature columns \`${features.join(',')}\``)
  })

  it('a name that is not a column, or too few columns for the ensemble: exit 2 with the file and line', async () => {
    const { file } = reshuffled()
    const args = ['-c', twoDataSets(), '--data', file, '--label', 'target', '--out', tempDir('specserve-eval-out-')]
    const unknown = await specserveEval([...args, '--columns', 'f0,f99'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/^specserve eval: .*shuffled\.csv:1: no column "f99" for --columns \(columns: id, target, f29, /)
    const narrow = await specserveEval([...args, '--columns', 'f0,f1', '--ensembles', 'cancer'])
    expect(narrow.code).toBe(2)
    expect(narrow.stderr).toMatch(/shuffled\.csv:1: 2 feature columns \(--columns f0,f1\), but ensemble "cancer" takes input "input" FP32 \[-1, ?30\]$/)
  })
})

describe('specserve eval on an ensemble named solo:<model>', () => {
  it('scores the user\'s ensemble as written (a majority vote of three), not eval\'s one-model ensemble of that name', async () => {
    const file = join(tempDir('specserve-eval-solo-'), 'solo.yaml')
    writeFileSync(
      file,
      `models:
  wine-logreg: { kind: onnx, path: ${model('wine_logreg.onnx')} }
  wine-tree: { kind: onnx, path: ${model('wine_tree.onnx')} }
  wine-knn: { kind: onnx, path: ${model('wine_knn.onnx')} }
ensembles:
  "solo:wine-knn": { strategy: majority-vote, models: [wine-logreg, wine-tree, wine-knn] }
`,
    )
    const out = tempDir('specserve-eval-out-')
    const run = await specserveEval(['-c', file, '--data', join(root, 'models', 'wine_holdout.csv'), '--label', 'label', '--out', out])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const [ens] = reportOf(out).ensembles
    expect([ens!.ensemble, ens!.strategy]).toEqual(['solo:wine-knn', 'majority-vote'])
    expect(ens!.results.map((r) => [r.target, r.kind, r.members])).toEqual([
      ['solo:wine-knn', 'ensemble', 3],
      ['wine-logreg', 'member', 1],
      ['wine-tree', 'member', 1],
      ['wine-knn', 'member', 1],
    ])
    expect(run.stdout).toMatch(/^\d+ ms: solo:wine-knn [\d.]+ (matches|beats|trails).* its best member wine-/m)
  })
})
