// Per-model calibration stored beside a config: `<config>.calibration.json`, written by
// `specserve eval --calibrate`, read with the config (start and reload). A temperature T
// turns a model's probabilities p into softmax(log p / T): T > 1 tempers an overconfident
// model, T < 1 sharpens a timid one. best-quality compares calibrated maxima when it has them.
import { readFileSync, realpathSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import { writeAtomically, WrittenNotSynced } from '../durable.ts'
import type { ConfigIssue } from './yaml.ts'

/** A temperature fit: softmax(log p / T), the T minimizing the mean negative log-likelihood. */
export interface TemperatureFit {
  readonly temperature: number
  /** Mean negative log-likelihood on the labeled set, before and after. */
  readonly nll_before: number
  readonly nll_after: number
  readonly rows: number
}

/**
 * An isotonic fit: a non-decreasing map from a model's maximum probability (`confidence`,
 * increasing) to the share of its answers that were right at that confidence (`accuracy`),
 * interpolated linearly between points and flat beyond the ends.
 */
export interface IsotonicFit {
  readonly isotonic: { readonly confidence: readonly number[]; readonly accuracy: readonly number[] }
  /** Brier score of the confidence as the chance of being right, before and after. */
  readonly brier_before: number
  readonly brier_after: number
  readonly rows: number
}

export type ModelCalibration = TemperatureFit | IsotonicFit

/** What best-quality applies to a model's maximum probability: a temperature, or an isotonic map. */
export type Calibration = number | IsotonicMap

export interface IsotonicMap {
  readonly confidence: Float64Array
  readonly accuracy: Float64Array
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

/** Calibrations by model; none when there is no file. A malformed file is a config problem. */
export function readCalibration(configFile: string, problem: (issue: ConfigIssue) => void): ReadonlyMap<string, Calibration> {
  const path = calibrationPath(configFile)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return new Map()
  }
  const calibrations = new Map<string, Calibration>()
  try {
    const parsed = JSON.parse(text) as Partial<CalibrationFile>
    for (const [model, entry] of Object.entries(parsed.models ?? {})) calibrations.set(model, calibrationOf(model, entry))
  } catch (err) {
    problem({ path: '', message: `${basename(path)}: ${(err as Error).message}` })
  }
  return calibrations
}

/** One model's entry, checked: a positive temperature, or an isotonic map that never goes down. */
export function calibrationOf(model: string, entry: unknown): Calibration {
  const { temperature: t, isotonic } = entry as Partial<TemperatureFit & IsotonicFit>
  if (isotonic !== undefined) {
    const { confidence, accuracy } = isotonic
    const ok =
      Array.isArray(confidence) &&
      Array.isArray(accuracy) &&
      confidence.length > 0 &&
      confidence.length === accuracy.length &&
      confidence.every((c, i) => typeof c === 'number' && c >= 0 && c <= 1 && (i === 0 || c > confidence[i - 1]!)) &&
      accuracy.every((a, i) => typeof a === 'number' && a >= 0 && a <= 1 && (i === 0 || a >= accuracy[i - 1]!))
    if (!ok) throw new Error(`models.${model}.isotonic needs confidence (increasing) and accuracy (non-decreasing) of one length, within [0, 1]`)
    return { confidence: Float64Array.from(confidence), accuracy: Float64Array.from(accuracy) }
  }
  if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t)) throw new Error(`models.${model}.temperature must be a positive number (or give isotonic)`)
  return t
}

/** `path` with its links followed, or `path` itself when it is not there yet. */
function realFile(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
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
  // Whole or not at all: the gateway reads this file at start and reload, and refuses a config whose file is cut short.
  try {
    // A link (a deploy's config directory made of links) stays one: its target is what is replaced.
    writeAtomically(realFile(path), JSON.stringify({ ...file, models: { ...previous, ...file.models } }, null, 2) + '\n')
  } catch (err) {
    if (!(err instanceof WrittenNotSynced)) throw err // in place (what a reader sees), only not synced
  }
  return path
}
