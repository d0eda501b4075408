// specserve validate end to end: what it prints (errors at their file, line and YAML path;
// warnings and notes), its exit code, and that it writes nothing.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { run, snapshot } from './cli-run.ts'
import { freePort, root } from './helpers.ts'
import { tempDir } from './temp-dirs.ts'
import { modelBytes, node, ONNX_ELEM, valueInfo } from './executors/onnx/onnx-proto.ts'

describe('specserve validate', () => {
  it('validate accepts the demo config', async () => {
    const { code, output } = await run(['validate', 'examples/demo.yaml'])
    expect(output).toContain('examples/demo.yaml: ok (14 models, 5 ensembles)')
    // No demo ensemble compares uncalibrated models by raw maximum probability: no warning.
    expect(output).not.toContain('warning:')
    expect(code).toBe(0)
  })

  it('validate waits for its workers to close, whatever server.shutdown_grace_ms (0 here): the grace bounds a stop of serve, not this', async () => {
    const file = join(tempDir('specserve-validate-'), 'grace0.yaml')
    writeFileSync(
      file,
      `server: { shutdown_grace_ms: 0 }\nmodels:\n  lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }\n  slow: { kind: onnx, path: ${join(root, 'models', 'cancer_slow.onnx')}, dedicated_workers: 1 }\n` +
        'ensembles:\n  e: { strategy: deadline-fallback, models: [lr, slow] }\n',
    )
    const { code, output } = await run(['validate', file])
    expect(output).toContain('grace0.yaml: ok (2 models, 1 ensemble)')
    expect(output).not.toContain('CloseTimeoutError')
    expect(code).toBe(0)
  })

  it('validate warns when best-quality compares uncalibrated models of different families, read from their graphs', async () => {
    const dir = tempDir('specserve-validate-')
    const file = join(dir, 'bq.yaml')
    const models = ['digits_rf', 'digits_mlp', 'wine_rf', 'wine_tree'].map((m) => `  ${m}: { kind: onnx, path: ${join(root, 'models', `${m}.onnx`)} }`).join('\n')
    const ensemble = (name: string, members: string) => `  ${name}:\n    strategy: { name: best-quality, good_enough: 0.9 }\n    models: [${members}]\n`
    writeFileSync(file, `models:\n${models}\nensembles:\n${ensemble('mixed', 'digits_rf, digits_mlp')}${ensemble('forests', 'wine_rf, wine_tree')}`)
    const { code, output } = await run(['validate', file])
    expect(code).toBe(0)
    expect(output).toMatch(
      /warning: .*bq\.yaml:8:\d+ ensembles\.mixed\.strategy: best-quality compares maximum probabilities across model families \(digits_rf: trees, digits_mlp: neural\) and digits_rf, digits_mlp are not calibrated/,
    )
    // A random forest and a decision tree are one family: their raw maxima compare fairly.
    expect(output).not.toContain('ensembles.forests')
  })

  it('validate warns about a slow model pinned inline, at its placement line', async () => {
    const dir = tempDir('specserve-validate-')
    const file = join(dir, 'pinned.yaml')
    const path = (m: string) => join(root, 'models', `${m}.onnx`)
    writeFileSync(
      file,
      // A threshold far from both models' run times (~90 ms and ~0.01 ms): on a loaded box the
      // tiny one's warm-up median has reached 0.24 ms, over the 0.2 ms default.
      `models:\n  slow:\n    kind: onnx\n    path: ${path('cancer_slow')}\n    placement: inline\n    inline_max_ms: 5\n  tiny: { kind: onnx, path: ${path('cancer_logreg')}, placement: inline, inline_max_ms: 5 }\n` +
        'ensembles:\n  e: { strategy: deadline-fallback, models: [slow, tiny] }\n',
    )
    const { code, output } = await run(['validate', file])
    expect(code).toBe(0)
    expect(output).toMatch(/warning: .*pinned\.yaml:5:\d+ models\.slow\.placement: pinned inline, but its warm-up median is [\d.]+ ms, over inline_max_ms 5/)
    expect(output).not.toContain('models.tiny')
  })

  it('validate warns about a remote model whose upstream does not answer, at its url line: it loads on its declared tensors', async () => {
    const file = join(tempDir('specserve-validate-'), 'remote.yaml')
    const closed = await freePort() // nothing listens there
    writeFileSync(
      file,
      `models:\n  lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }\n  down:\n    kind: oip\n    url: http://127.0.0.1:${closed}\n    model: m\n` +
        '    inputs: [{ name: input, datatype: FP32, shape: [-1, 30] }]\n    outputs: [{ name: label, datatype: INT64, shape: [-1] }]\n' +
        'ensembles:\n  e: { strategy: deadline-fallback, models: [down, lr] }\n',
    )
    const { code, output } = await run(['validate', file])
    expect(code).toBe(0)
    expect(output).toMatch(/warning: .*remote\.yaml:5:\d+ models\.down\.url: its upstream's metadata could not be read at load \(.*ECONNREFUSED.*\): serving it on the inputs and outputs the YAML declares/)
    expect(output).not.toContain('models.lr')
  })

  it("validate prints onnxruntime's reason a model fails to load, without its C++ source location and signature, on one line", async () => {
    const dir = tempDir('specserve-validate-')
    const model = join(dir, 'opset99.onnx')
    writeFileSync(model, modelBytes({ nodes: [node('Identity', ['x'], ['y'])], inputs: [valueInfo('x', ONNX_ELEM.FP32, ['N', 2])], outputs: [valueInfo('y', ONNX_ELEM.FP32, ['N', 2])], opset: 99 }))
    const file = join(dir, 'opset.yaml')
    writeFileSync(file, `models:\n  m: { kind: onnx, path: ${model} }\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n`)
    const { code, output } = await run(['validate', file])
    expect(code).toBe(1)
    expect(output).toMatch(/opset\.yaml:2:\d+ models\.m: failed to load: Load model from .*opset99\.onnx failed: ONNX Runtime only \*guarantees\* support for models stamped with official released onnx opset versions\. Opset 99 .*\.\n/)
    expect(output).not.toMatch(/onnxruntime_src|onnxruntime::|\.h:\d+/)
    expect(output.split('\n').slice(0, -1)).not.toContain('') // no blank line after it
  })

  it('validate prints every error with file, line and YAML path, and exits 1', async () => {
    const { code, output } = await run(['validate', 'test/fixtures/bad.yaml'])
    expect(code).toBe(1)
    const lines = output.trim().split('\n')
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/bad\.yaml:3:\d+ models\.gone\.path: cannot read model file .*missing\.onnx$/),
        expect.stringMatching(/bad\.yaml:7:\d+ ensembles\.fraud\.models\.1: unknown model "fraud-smrt"$/),
        expect.stringMatching(/bad\.yaml:8:\d+ ensembles\.fraud\.budget_ms\.default: default 50 is over max 20$/),
      ]),
    )
  })

  it('validate refuses a plaintext API key, and a sha256 that is not a hash', async () => {
    const { code, output } = await run(['validate', 'test/fixtures/insecure-auth.yaml'])
    expect(code).toBe(1)
    expect(output).toMatch(/insecure-auth\.yaml:7:\d+ auth\.api_keys\.0\.key: a plaintext key does not belong in the config/)
    expect(output).toMatch(/insecure-auth\.yaml:8:\d+ auth\.api_keys\.1\.sha256: not a hex SHA-256/)
  })

  it('validate writes nothing in the repository: says which version would serve and that a seed would be imported', async () => {
    const dir = tempDir('specserve-validate-repo-')
    // cancer-copied: a version directory copied in, never judged (no meta.json); cancer-seeded: nothing yet, a seed path.
    mkdirSync(join(dir, 'repo', 'cancer-copied', '3'), { recursive: true })
    copyFileSync(join(root, 'models', 'cancer_logreg.onnx'), join(dir, 'repo', 'cancer-copied', '3', 'model.onnx'))
    const file = join(dir, 'repo.yaml')
    writeFileSync(
      file,
      `repository: { path: ./repo }\nmodels:\n  cancer-seeded: { kind: onnx, source: repository, path: ${join(root, 'models', 'cancer_gbdt.onnx')} }\n  cancer-copied: { kind: onnx, source: repository }\nensembles:\n  cancer: { strategy: deadline-fallback, models: [cancer-seeded, cancer-copied] }\n`,
    )
    const before = snapshot(dir)
    const { code, output } = await run(['validate', file])
    expect(output).toMatch(/note: .*repo\.yaml:3:\d+ models\.cancer-seeded\.source: no version in .*cancer-seeded yet: serve would import path: .*cancer_gbdt\.onnx as version 1/)
    expect(output).toMatch(/note: .*repo\.yaml:4:\d+ models\.cancer-copied\.source: version 3 would serve/)
    expect(output).toContain('ok (2 models, 1 ensemble)')
    expect(code).toBe(0)
    expect(snapshot(dir)).toEqual(before)
  })

  it('validate reports a missing repository and a model with nothing to serve, at their lines, and writes nothing', async () => {
    const dir = tempDir('specserve-validate-repo-')
    const file = join(dir, 'empty.yaml')
    writeFileSync(file, `models:\n  cancer-main: { kind: onnx, source: repository }\nensembles:\n  cancer: { strategy: deadline-fallback, models: [cancer-main] }\nrepository: { path: ./repo }\n`)
    const before = snapshot(dir)
    const { code, output } = await run(['validate', file])
    expect(code).toBe(1)
    expect(output).toMatch(/empty\.yaml:5:\d+ repository\.path: repository directory .*repo does not exist/)
    expect(output).toMatch(/empty\.yaml:2:\d+ models\.cancer-main\.source: no version to serve in .*cancer-main/)
    expect(snapshot(dir)).toEqual(before)
  })
})
