// Per-model calibration stored beside a config: `<config>.calibration.json`, written by
// `specserve eval --calibrate`, read with the config (start and reload). A temperature T
// turns a model's probabilities p into softmax(log p / T): T > 1 tempers an overconfident
// model, T < 1 sharpens a timid one. best-quality compares calibrated maxima when it has them.
import { readFileSync, writeFileSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import type { ConfigIssue } from './yaml.ts'

export interface ModelCalibration {
  readonly temperature: number
  /** Mean negative log-likelihood on the labeled set, before and after. */
  readonly nll_before: number
  readonly nll_after: number
  readonly rows: number
}

export interface CalibrationFile {
  /** The labeled data set it was fitted on. */
  readonly data: string
  readonly fitted_at: string
  readonly models: Readonly<Record<string, ModelCalibration>>
}

/** `examples/demo.yaml` → `examples/demo.calibration.json`. */
export function calibrationPath(configFile: string): string {
  return join(dirname(configFile), `${basename(configFile, extname(configFile))}.calibration.json`)
}

/** Temperatures by model; none when there is no file. A malformed file is a config problem. */
export function readCalibration(configFile: string, problem: (issue: ConfigIssue) => void): ReadonlyMap<string, number> {
  const path = calibrationPath(configFile)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return new Map()
  }
  const temperatures = new Map<string, number>()
  try {
    const parsed = JSON.parse(text) as Partial<CalibrationFile>
    for (const [model, entry] of Object.entries(parsed.models ?? {})) {
      const t = (entry as Partial<ModelCalibration>).temperature
      if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t)) throw new Error(`models.${model}.temperature must be a positive number`)
      temperatures.set(model, t)
    }
  } catch (err) {
    problem({ path: '', message: `${basename(path)}: ${(err as Error).message}` })
  }
  return temperatures
}

/** Writes the file; models fitted before and not refitted now are kept. */
export function writeCalibration(configFile: string, file: CalibrationFile): string {
  const path = calibrationPath(configFile)
  let previous: Record<string, ModelCalibration> = {}
  try {
    previous = (JSON.parse(readFileSync(path, 'utf8')) as CalibrationFile).models ?? {}
  } catch {
    // none yet, or unreadable: this run's fit replaces it
  }
  writeFileSync(path, JSON.stringify({ ...file, models: { ...previous, ...file.models } }, null, 2) + '\n')
  return path
}
