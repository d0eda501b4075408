// `specserve validate` on a repository whose chosen version can no longer serve: it names the
// version serve would serve (serve's start falls back from one that fails to load or its gate,
// test/registry/fallback.int.test.ts), warns which version fails and what becomes of it, and
// writes nothing; a `ready` version whose file is gone, it warns serve would reject. Repositories
// are laid out on disk as a previous run leaves them.
import { appendFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ModelDirectory } from '../../src/registry/store.ts'
import type { VersionState } from '../../src/registry/version-meta.ts'
import { newMeta } from '../../src/registry/version-rules.ts'
import { root, samples, startProcess } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const models = join(root, 'models')
const cancer = samples('cancer')
const truth = (JSON.parse(readFileSync(join(models, 'manifest.json'), 'utf8')) as { tasks: { cancer: { truth: number[] } } }).tasks.cancer.truth
const logreg = readFileSync(join(models, 'cancer_logreg.onnx'))
// cancer_mlp gets example 3 wrong: it fails the gate.
const mlp = readFileSync(join(models, 'cancer_mlp.onnx'))

/** A repository as a previous run left it, and its config (gated on the examples); the config file's path. */
function repository(versions: [version: number, bytes: Buffer, state: VersionState][]): string {
  const dir = tempDir('specserve-validate-fallback-')
  writeFileSync(join(dir, 'examples.jsonl'), cancer.rows.map((row, i) => JSON.stringify({ inputs: { input: [row] }, outputs: { label: [truth[i]] } })).join('\n'))
  const directory = new ModelDirectory(join(dir, 'repo'), 'cancer-main')
  directory.open()
  for (const [version, bytes, state] of versions) directory.storeSync(bytes, { ...newMeta(version, bytes, 'upload', null), state, serving_since: state === 'serving' ? '2026-01-01T00:00:00.000Z' : null })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, 'repository: { path: ./repo }\nmodels:\n  cancer-main: { kind: onnx, source: repository, validation: { examples: examples.jsonl } }\nensembles:\n  cancer: { strategy: deadline-fallback, models: [cancer-main] }\n')
  return file
}

const modelFile = (file: string, version: number): string => join(file, '..', 'repo', 'cancer-main', String(version), 'model.onnx')

/** Every file under the config's directory with its bytes: to show validate wrote nothing. */
function snapshot(file: string): Record<string, string> {
  const dir = join(file, '..')
  return Object.fromEntries(readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => [join(e.parentPath, e.name), e.isDirectory() ? '(dir)' : readFileSync(join(e.parentPath, e.name)).toString('base64')]))
}

async function validate(file: string): Promise<{ code: number | null; output: string }> {
  const proc = startProcess(process.execPath, [join(root, 'src', 'cli.ts'), 'validate', file])
  const code = await new Promise<number | null>((resolve) => proc.child.once('exit', resolve))
  return { code, output: proc.output() }
}

describe('specserve validate, when the version that served last cannot serve', () => {
  it('its file damaged (a byte appended) or deleted: names the version serve falls back to, warns the damaged one would be rejected, exit 0, writes nothing', async () => {
    for (const [damage, warning] of [
      // Damaged: it fails to load, and the start falls back from it.
      [
        (file: string) => appendFileSync(modelFile(file, 2), 'x'),
        /warning: .*gateway\.yaml:3:\d+ models\.cancer-main\.source: version 2 would fail at start \(failed to load: .*\): serve would fall back to version 1, which passed before, and version 2 would be rejected \(its model file no longer matches the sha256 it was stored with\)/,
      ],
      // Gone: the start rejects it before loading anything.
      [(file: string) => rmSync(modelFile(file, 2)), /warning: .*gateway\.yaml:3:\d+ models\.cancer-main\.source: version 2's model file is gone: serve would reject it at start/],
    ] as const) {
      const file = repository([[1, logreg, 'ready'], [2, logreg, 'serving']])
      damage(file)
      const before = snapshot(file)
      const { code, output } = await validate(file)
      expect(output).toMatch(warning)
      expect(output).toMatch(/note: .*models\.cancer-main\.source: version 1 would serve \(.*cancer-main\/1\/model\.onnx\)/)
      expect(output).toContain('ok (1 model, 1 ensemble)')
      expect(code).toBe(0)
      expect(snapshot(file)).toEqual(before)
    }
  })

  it('failing its gate now: names the version serve falls back to, and says the failed one is tried again at the next start', async () => {
    const file = repository([[1, logreg, 'ready'], [2, mlp, 'serving']])
    const { code, output } = await validate(file)
    expect(output).toMatch(/version 2 would fail at start \(validation gate failed: example 3.*\): serve would fall back to version 1, which passed before, and version 2 tried again at the next start/)
    expect(output).toMatch(/note: .*version 1 would serve/)
    expect(code).toBe(0)
  })

  it('a ready version below it whose file is gone: warns serve would reject it at start, and names the version that served last', async () => {
    const file = repository([[1, logreg, 'ready'], [2, logreg, 'serving']])
    rmSync(modelFile(file, 1))
    const { code, output } = await validate(file)
    expect(output).toMatch(/warning: .*gateway\.yaml:3:\d+ models\.cancer-main\.source: version 1's model file is gone: serve would reject it at start/)
    expect(output).toMatch(/note: .*models\.cancer-main\.source: version 2 would serve/)
    expect(code).toBe(0)
  })

  it('with no earlier version that passed: fails as serve fails to start, with the reason', async () => {
    const file = repository([[1, logreg, 'rejected'], [2, logreg, 'serving']])
    appendFileSync(modelFile(file, 2), 'x')
    const { code, output } = await validate(file)
    expect(output).toMatch(/warning: .*version 2 would fail at start \(failed to load: .*\) and no earlier version passed: the start would fail, and version 2 would be rejected/)
    expect(output).toMatch(/gateway\.yaml:3:\d+ models\.cancer-main: failed to load: /)
    expect(code).toBe(1)
  })
})
