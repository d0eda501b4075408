// The calibration file beside a config (<config>.calibration.json), as the loader reads it:
// absent is "no calibration", but one that is there and cannot be read, or is malformed, is a
// config problem naming the file and every bad entry; an entry for no model of the config is
// said as a warning.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, type ConfigIssue } from '../../src/config/yaml.ts'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const yaml = `models:
  a: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }
  b: { kind: onnx, path: ${join(root, 'models', 'cancer_mlp.onnx')} }
ensembles:
  e: { strategy: best-quality, models: [a, b] }
`

/** A config file `c.yaml` in a directory of its own, with `calibration` beside it (a JSON text, or a directory). */
function configBeside(calibration?: string | 'directory'): string {
  const dir = tempDir('specserve-calibration-')
  if (calibration === 'directory') mkdirSync(join(dir, 'c.calibration.json'))
  else if (calibration !== undefined) writeFileSync(join(dir, 'c.calibration.json'), calibration)
  return join(dir, 'c.yaml')
}

function issuesOf(file: string): ConfigIssue[] {
  try {
    parseConfig(yaml, file)
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues]
    throw err
  }
  throw new Error('config was accepted')
}

describe('the calibration file', () => {
  it('is none when absent, and a config problem naming the file when it is there but cannot be read', () => {
    expect(parseConfig(yaml, configBeside()).calibration.size).toBe(0)
    const file = configBeside('directory')
    expect(issuesOf(file)).toEqual([
      { path: '', message: `c.calibration.json: cannot read the calibration file ${join(file, '..', 'c.calibration.json')}: EISDIR: illegal operation on a directory, read` },
    ])
  })

  it('names every bad entry in words, a null one included, at its line in the file', () => {
    const file = configBeside(JSON.stringify({ models: { a: null, b: { temperature: -1 } } }, null, 2))
    expect(issuesOf(file).map((i) => i.message)).toEqual([
      'c.calibration.json:3:5: models.a must be a map: { "temperature": T } or { "isotonic": { "confidence": [...], "accuracy": [...] } }',
      'c.calibration.json:4:5: models.b.temperature must be a positive number (or give isotonic)',
    ])
    expect(issuesOf(configBeside('[1]')).map((i) => i.message)).toEqual(['c.calibration.json: must be a JSON object: { "data", "fitted_at", "models" }'])
    expect(issuesOf(configBeside('{"models": [1]}')).map((i) => i.message)).toEqual(['c.calibration.json: models must be a map of model name to its calibration'])
  })

  it('refuses an unknown key (at the top, in an entry, in an isotonic map) and a model given twice, as the config refuses them', () => {
    expect(issuesOf(configBeside('{\n  "modls": { "a": { "temperature": 2 } }\n}')).map((i) => i.message)).toEqual([
      'c.calibration.json:2:3: unknown key "modls" (a calibration file has data, fitted_at, models)',
    ])
    const entries = JSON.stringify({ models: { a: { temperature: 2, temprature: 3 }, b: { isotonic: { confidence: [0.5], accuracy: [0.6], points: 1 }, temperature: 2 } } }, null, 2)
    expect(issuesOf(configBeside(entries)).map((i) => i.message)).toEqual([
      'c.calibration.json:3:5: models.a: unknown key "temprature" (it takes temperature, nll_before, nll_after, rows, data, fitted_at)',
      'c.calibration.json:7:5: models.b: unknown key "temperature" (it takes isotonic, brier_before, brier_after, rows, data, fitted_at)',
    ])
    const isotonic = JSON.stringify({ models: { a: { isotonic: { confidence: [0.5], accuracy: [0.6], points: 1 } } } })
    expect(issuesOf(configBeside(isotonic)).map((i) => i.message)).toEqual([
      'c.calibration.json:1:12: models.a.isotonic: unknown key "points" (it takes confidence, accuracy)',
    ])
    expect(issuesOf(configBeside('{"models": {"a": {"temperature": 2}, "a": {"temperature": 3}}}')).map((i) => i.message)).toEqual([
      'c.calibration.json:1:38: models.a: duplicate key "a": give each key once',
    ])
  })

  it('reads a file the released version wrote (one data set and time at the top) and one whose entries have their own', () => {
    const released = { data: 'models/cancer_holdout.csv', fitted_at: '2026-12-01T18:23:38.052Z', models: { a: { temperature: 2, nll_before: 0.5, nll_after: 0.4, rows: 143 } } }
    expect(parseConfig(yaml, configBeside(JSON.stringify(released, null, 2))).calibration).toEqual(new Map([['a', 2]]))
    const perEntry = { models: { a: { ...released.models.a, data: 'wine.csv', fitted_at: '2026-12-02T00:00:00.000Z' }, b: { isotonic: { confidence: [0.9], accuracy: [0.8] }, rows: 5, data: 'cancer.csv', fitted_at: '2026-12-03T00:00:00.000Z' } } }
    expect(parseConfig(yaml, configBeside(JSON.stringify(perEntry, null, 2))).calibration.get('a')).toBe(2)
    expect(issuesOf(configBeside(JSON.stringify({ models: { a: { temperature: 2, data: 7 } } }, null, 2))).map((i) => i.message)).toEqual([
      'c.calibration.json:3:5: models.a.data must be a string (the data set it was fitted on)',
    ])
  })

  it('warns of an entry for a model the config does not have, and applies the others', () => {
    const config = parseConfig(yaml, configBeside(JSON.stringify({ models: { a: { temperature: 2 }, gone: { temperature: 1.5 } } })))
    expect(config.calibration).toEqual(new Map([['a', 2]]))
    expect(config.warnings).toEqual([{ path: '', message: 'c.calibration.json:1:34: models.gone: the config has no model "gone": this calibration is not used' }])
  })
})
