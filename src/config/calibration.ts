// Per-model calibration stored beside a config: `<config>.calibration.json`, written by
// `specserve eval --calibrate`, read with the config (start and reload). A temperature T
// turns a model's probabilities p into softmax(log p / T): T > 1 tempers an overconfident
// model, T < 1 sharpens a timid one. best-quality compares calibrated maxima when it has them.
import { readFileSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import { realPathOr, writeAtomically, WrittenNotSynced } from '../durable.ts'
import { withFileLock, type FileLockOptions } from '../file-lock.ts'
import { parseYaml, type ConfigIssue } from './yaml.ts'

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

/**
 * Where and when a model's calibration was fitted: the labeled data set (as eval was given it)
 * and the time. Each entry has its own: a file gathers fits from several runs on several data
 * sets. A file written before entries had them has them once, at the top, for every entry.
 */
export interface FitOrigin {
  readonly data?: string
  readonly fitted_at?: string
}

export type ModelCalibration = (TemperatureFit | IsotonicFit) & FitOrigin

/** What best-quality applies to a model's maximum probability: a temperature, or an isotonic map. */
export type Calibration = number | IsotonicMap

export interface IsotonicMap {
  readonly confidence: Float64Array
  readonly accuracy: Float64Array
}

export interface CalibrationFile extends FitOrigin {
  /** Each model's fit, with its data set and time (FitOrigin); the top-level ones are an older file's, for every entry. */
  readonly models: Readonly<Record<string, ModelCalibration>>
}

/** `examples/demo.yaml` → `examples/demo.calibration.json`. */
export function calibrationPath(configFile: string): string {
  return join(dirname(configFile), `${basename(configFile, extname(configFile))}.calibration.json`)
}

/** Where readCalibration reports: problems refuse the config, warnings are printed with it. */
export interface CalibrationReport {
  /** Whether the config has a model of this name. */
  hasModel(name: string): boolean
  problem(issue: ConfigIssue): void
  warn(issue: ConfigIssue): void
}

/**
 * Calibrations by model; none when there is no file. A file that is there but cannot be read
 * (a directory, no permission) or is malformed is a config problem, each bad entry named; an
 * entry for a model the config does not have is a warning (a model removed since the fit).
 */
export function readCalibration(configFile: string, report: CalibrationReport): ReadonlyMap<string, Calibration> {
  const path = calibrationPath(configFile)
  const name = basename(path)
  const problem = (message: string): void => report.problem({ path: '', message: `${name}: ${message}` })
  const calibrations = new Map<string, Calibration>()
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    // No file, or a config name that leaves no room for one: nothing to read. Anything else (a directory, no permission) is a fault to fix.
    const none = ['ENOENT', 'ENAMETOOLONG'].includes((err as NodeJS.ErrnoException).code ?? '')
    if (!none) problem(`cannot read the calibration file ${path}: ${(err as Error).message}`)
    return calibrations
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    problem((err as Error).message)
    return calibrations
  }
  if (!isMap(parsed)) {
    problem('must be a JSON object: { "data", "fitted_at", "models" }')
    return calibrations
  }
  // JSON is YAML: the config's reader gives positions, and finds a key given twice, which
  // JSON.parse would let the last one win silently (as the config refuses it).
  const yaml = parseYaml(text)
  const place = (path: readonly string[]): string => {
    const pos = yaml.source.locate([...path], 'key')
    return pos ? `${name}:${pos.line}:${pos.col}` : name
  }
  const at = (model: string): string => place(['models', model])
  for (const issue of yaml.issues) {
    if (issue.message.startsWith('duplicate key')) report.problem({ path: '', message: `${name}${issue.line ? `:${issue.line}:${issue.col}` : ''}: ${issue.path}: ${issue.message}` })
  }
  // A key the file does not have (a typo, `modls`) would leave every model uncalibrated without a word.
  for (const key of Object.keys(parsed)) {
    if (!FILE_KEYS.includes(key)) report.problem({ path: '', message: `${place([key])}: unknown key ${JSON.stringify(key)} (a calibration file has ${FILE_KEYS.join(', ')})` })
  }
  const models = parsed.models ?? {}
  if (!isMap(models)) {
    problem('models must be a map of model name to its calibration')
    return calibrations
  }
  for (const [model, entry] of Object.entries(models)) {
    if (!report.hasModel(model)) {
      report.warn({ path: '', message: `${at(model)}: models.${model}: the config has no model ${JSON.stringify(model)}: this calibration is not used` })
      continue
    }
    try {
      calibrations.set(model, calibrationOf(model, entry))
    } catch (err) {
      report.problem({ path: '', message: `${at(model)}: ${(err as Error).message}` })
    }
  }
  return calibrations
}

const isMap = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value)

const FILE_KEYS = ['data', 'fitted_at', 'models']
const ORIGIN_KEYS = ['data', 'fitted_at']
const TEMPERATURE_KEYS = ['temperature', 'nll_before', 'nll_after', 'rows', ...ORIGIN_KEYS]
const ISOTONIC_KEYS = ['isotonic', 'brier_before', 'brier_after', 'rows', ...ORIGIN_KEYS]

/** The first key of `map` not in `keys`, as an error naming `where` and what it takes. */
function unknownKey(map: Record<string, unknown>, keys: readonly string[], where: string): Error | undefined {
  const key = Object.keys(map).find((k) => !keys.includes(k))
  return key === undefined ? undefined : new Error(`${where}: unknown key ${JSON.stringify(key)} (it takes ${keys.join(', ')})`)
}

/** One model's entry, checked: a positive temperature, or an isotonic map that never goes down. */
export function calibrationOf(model: string, entry: unknown): Calibration {
  if (!isMap(entry)) throw new Error(`models.${model} must be a map: { "temperature": T } or { "isotonic": { "confidence": [...], "accuracy": [...] } }`)
  const { temperature: t, isotonic } = entry as Partial<TemperatureFit & IsotonicFit>
  // A misspelt key, or both kinds in one entry, would be ignored: one of them would apply unsaid.
  const unknown = unknownKey(entry, isotonic !== undefined ? ISOTONIC_KEYS : TEMPERATURE_KEYS, `models.${model}`)
  if (unknown) throw unknown
  for (const key of ORIGIN_KEYS) {
    if (entry[key] !== undefined && typeof entry[key] !== 'string') throw new Error(`models.${model}.${key} must be a string (${key === 'data' ? 'the data set it was fitted on' : 'when it was fitted'})`)
  }
  if (isotonic !== undefined) {
    const inner = isMap(isotonic) && unknownKey(isotonic, ['confidence', 'accuracy'], `models.${model}.isotonic`)
    if (inner) throw inner
    const { confidence, accuracy } = isMap(isotonic) ? isotonic : { confidence: undefined, accuracy: undefined }
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

/**
 * Writes `models` (each with its FitOrigin) into the file; models fitted before and not
 * refitted now are kept, with their own data set and time (an older file's top-level ones
 * move into its entries). The file is read, merged and written holding `<file>.lock` (its
 * link target's, for a link), so two runs on one config at once each keep the other's entries
 * (read before the lock, one would write over what the other wrote since). Returns the file's path.
 */
export async function writeCalibration(configFile: string, models: Readonly<Record<string, ModelCalibration>>, lock: FileLockOptions = {}): Promise<string> {
  const path = calibrationPath(configFile)
  // A link (a deploy's config directory made of links) stays one: its target is what is replaced, and locked.
  const target = realPathOr(path, join(realPathOr(dirname(path), dirname(path)), basename(path)))
  await withFileLock(target, () => mergeInto(target, models), lock)
  return path
}

/** The read-merge-write, under the lock: what is in the file now, this run's entries over it. */
function mergeInto(target: string, models: Readonly<Record<string, ModelCalibration>>): void {
  let previous: Record<string, ModelCalibration> = {}
  try {
    const file = JSON.parse(readFileSync(target, 'utf8')) as CalibrationFile
    const origin: FitOrigin = { data: file.data, fitted_at: file.fitted_at }
    previous = Object.fromEntries(Object.entries(file.models ?? {}).map(([model, fit]) => [model, { ...fit, data: fit.data ?? origin.data, fitted_at: fit.fitted_at ?? origin.fitted_at }]))
  } catch {
    // none yet, or unreadable: this run's fit replaces it
  }
  // Whole or not at all: the gateway reads this file at start and reload, and refuses a config whose file is cut short.
  try {
    writeAtomically(target, JSON.stringify({ models: { ...previous, ...models } }, null, 2) + '\n')
  } catch (err) {
    if (!(err instanceof WrittenNotSynced)) throw err // in place (what a reader sees), only not synced
  }
}
