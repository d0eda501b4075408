// `specserve eval` and `--calibrate` on a repository model: they score the version serve would
// serve (the one validate names), not the seed `path:`, and need no `path:` at all.
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { calibrate } from '../../src/eval/calibrate.ts'
import { evalMain } from '../../src/eval/cli.ts'
import { readLabeledCsv } from '../../src/eval/data.ts'
import { runEval } from '../../src/eval/run.ts'
import { root } from '../helpers.ts'
import { printed } from '../console-output.ts'
import { tempDir } from '../temp-dirs.ts'

const model = (file: string): string => join(root, 'models', file)
const cancerCsv = join(root, 'examples', 'cancer_holdout.csv')

/**
 * A repository whose cancer-main serves version 2, a copy of cancer_mlp, beside cancer-mlp
 * itself; `seed` is cancer-main's `path:` (cancer_logreg: a model that scores otherwise).
 */
function repositoryConfig(seed: boolean): string {
  const dir = tempDir('specserve-eval-repo-')
  mkdirSync(join(dir, 'repo', 'cancer-main', '2'), { recursive: true })
  copyFileSync(model('cancer_mlp.onnx'), join(dir, 'repo', 'cancer-main', '2', 'model.onnx'))
  const file = join(dir, 'c.yaml')
  writeFileSync(
    file,
    `repository: { path: ./repo, watch: false }
models:
  cancer-main: { kind: onnx, source: repository${seed ? `, path: ${model('cancer_logreg.onnx')}` : ''} }
  cancer-mlp: { kind: onnx, path: ${model('cancer_mlp.onnx')} }
  cancer-logreg: { kind: onnx, path: ${model('cancer_logreg.onnx')} }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-mlp, cancer-logreg], budget_ms: { default: 500, max: 1000 } }
`,
  )
  return file
}

afterEach(() => vi.restoreAllMocks())

describe('specserve eval on a repository model', () => {
  it('scores the version that would serve (2, the MLP), not the seed path: (the logistic regression)', async () => {
    const data = readLabeledCsv(cancerCsv, 'target')
    const [report] = await runEval(loadConfigFile(repositoryConfig(true)), data, { ensembles: ['cancer'], warmup: 0 })
    const score = (target: string): number => report!.results.find((r) => r.target === target)!.score
    expect(score('cancer-mlp')).not.toBe(score('cancer-logreg'))
    expect(score('cancer-main')).toBe(score('cancer-mlp'))
  })

  it('--calibrate fits the version that would serve: the same temperature as the MLP, and writes nothing in the repository', async () => {
    const file = repositoryConfig(true)
    const fitted = await calibrate(loadConfigFile(file), readLabeledCsv(cancerCsv, 'target'), ['cancer'])
    expect(fitted.models['cancer-main']).toEqual(fitted.models['cancer-mlp'])
    expect(fitted.models['cancer-main']).not.toEqual(fitted.models['cancer-logreg'])
    expect(readdirSync(join(file, '..', 'repo', 'cancer-main', '2'))).toEqual(['model.onnx'])
  })

  it('a repository model without path: runs (exit 0)', async () => {
    const { code, err } = await printed(() => evalMain(['-c', repositoryConfig(false), '--data', cancerCsv, '--label', 'target', '--out', tempDir('specserve-eval-out-')]))
    expect(err).toBe('')
    expect(code).toBe(0)
  })
})
