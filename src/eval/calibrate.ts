// `specserve eval --calibrate [temperature|isotonic]`: fits one calibration per model on a
// labeled set, from each member's probabilities through the real predict path, and stores
// them beside the config. A temperature minimizes the mean negative log-likelihood of the
// true class under softmax(log p / T); an isotonic map is the non-decreasing function of the
// maximum probability closest (least squares) to whether the answer was right. Classes are
// the probabilities' columns: label k is column k. A model's probabilities are kept in one
// flat array, row after row (`classes` a row): an array per row cost ~3 times as much.
import type { GatewayConfig } from '../config/load.ts'
import { calibrationOf, calibrationPath, writeCalibration, type IsotonicFit, type ModelCalibration, type TemperatureFit } from '../config/calibration.ts'
import { findProbabilitiesOutput, isotonicAt } from '../collectors/outputs.ts'
import { numberAt } from '../tensor/index.ts'
import { shownPath } from '../config/yaml.ts'
import type { FileLockOptions } from '../file-lock.ts'
import { EvalInputError, type LabeledData } from './data.ts'
import { featureInput } from './fit.ts'
import { evalGateway, planEval, predictRow, type EvalOptions } from './run.ts'
import { checkClassIndices } from './scoring.ts'

/** Probabilities are floored here before the log: a 0 for the true class is a big, finite penalty. */
const FLOOR = 1e-12

/** Mean negative log-likelihood of the true classes at temperature T; `probs` holds `classes` a row, one row per label. */
export function nll(probs: Float64Array, classes: number, labels: ArrayLike<number>, temperature: number): number {
  const rows = labels.length
  let total = 0
  for (let r = 0; r < rows; r++) {
    const at = r * classes
    let max = Number.NEGATIVE_INFINITY
    for (let c = 0; c < classes; c++) max = Math.max(max, Math.log(Math.max(probs[at + c]!, FLOOR)) / temperature)
    let z = 0
    for (let c = 0; c < classes; c++) z += Math.exp(Math.log(Math.max(probs[at + c]!, FLOOR)) / temperature - max)
    total -= Math.log(Math.max(probs[at + labels[r]!]!, FLOOR)) / temperature - max - Math.log(z)
  }
  return total / rows
}

/** The range fitTemperature searches. */
export const TEMPERATURE_RANGE = [0.05, 50] as const

/**
 * Whether the rows left the temperature to the search: an end of TEMPERATURE_RANGE fits them
 * about as well as the temperature found (a model right on every row keeps gaining from a
 * sharper map, up to the end; one certain and right on every row fits every temperature), so
 * the range chose it, not the data.
 */
export function temperatureUnpinned(probs: Float64Array, classes: number, labels: ArrayLike<number>, temperature: number): boolean {
  const ends = Math.min(nll(probs, classes, labels, TEMPERATURE_RANGE[0]), nll(probs, classes, labels, TEMPERATURE_RANGE[1]))
  return ends - nll(probs, classes, labels, temperature) < 1e-6
}

/** The temperature in TEMPERATURE_RANGE that minimizes nll: golden-section search on log T (nll is unimodal in T). */
export function fitTemperature(probs: Float64Array, classes: number, labels: ArrayLike<number>): TemperatureFit {
  const f = (logT: number): number => nll(probs, classes, labels, Math.exp(logT))
  const ratio = (Math.sqrt(5) - 1) / 2
  let lo = Math.log(TEMPERATURE_RANGE[0])
  let hi = Math.log(TEMPERATURE_RANGE[1])
  let a = hi - ratio * (hi - lo)
  let b = lo + ratio * (hi - lo)
  let fa = f(a)
  let fb = f(b)
  for (let i = 0; i < 60; i++) {
    if (fa < fb) {
      hi = b
      b = a
      fb = fa
      a = hi - ratio * (hi - lo)
      fa = f(a)
    } else {
      lo = a
      a = b
      fa = fb
      b = lo + ratio * (hi - lo)
      fb = f(b)
    }
  }
  const temperature = Math.exp((lo + hi) / 2)
  return {
    temperature: round(temperature),
    nll_before: round(nll(probs, classes, labels, 1)),
    nll_after: round(nll(probs, classes, labels, temperature)),
    rows: labels.length,
  }
}

const round = (v: number): number => Math.round(v * 1e4) / 1e4

/** Pools block `at` (the last by default) into the one before it. */
function pool(blocks: { x: number; y: number; n: number }[], at = blocks.length - 1): void {
  const [top] = blocks.splice(at, 1)
  const below = blocks[at - 1]!
  below.x += top!.x
  below.y += top!.y
  below.n += top!.n
}

export const CALIBRATION_METHODS = ['temperature', 'isotonic'] as const
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number]

/**
 * The isotonic map from each row's maximum probability to whether its argmax was the label:
 * pool-adjacent-violators over the rows sorted by confidence (equal confidences pooled
 * first), so the fitted accuracy never goes down as confidence goes up. One point per block.
 */
export function fitIsotonic(probs: Float64Array, classes: number, labels: ArrayLike<number>): IsotonicFit {
  const rows = Array.from({ length: labels.length }, (_, r) => {
    const at = r * classes
    let best = 0
    for (let c = 1; c < classes; c++) if (probs[at + c]! > probs[at + best]!) best = c
    return { confidence: probs[at + best]!, right: best === labels[r] ? 1 : 0 }
  })
  rows.sort((a, b) => a.confidence - b.confidence)
  // Blocks of rows: their summed confidence, summed rightness and count. Rows of one confidence
  // start as one block (grouped by the value itself: a running mean drifts, and a merged block's
  // mean is no row's), so their order in the file cannot change the fit.
  const blocks: { x: number; y: number; n: number }[] = []
  for (let i = 0; i < rows.length; ) {
    const confidence = rows[i]!.confidence
    const block = { x: 0, y: 0, n: 0 }
    for (; i < rows.length && rows[i]!.confidence === confidence; i++) {
      block.x += confidence
      block.y += rows[i]!.right
      block.n++
    }
    blocks.push(block)
    while (blocks.length > 1 && blocks.at(-2)!.y / blocks.at(-2)!.n >= blocks.at(-1)!.y / blocks.at(-1)!.n) pool(blocks)
  }
  // Rounding can make neighbouring confidences equal: their blocks are pooled too (the pooled
  // accuracy lies between theirs, so the map stays non-decreasing).
  for (let i = blocks.length - 1; i > 0; i--) {
    if (round(blocks[i]!.x / blocks[i]!.n) === round(blocks[i - 1]!.x / blocks[i - 1]!.n)) pool(blocks, i)
  }
  const confidence = blocks.map((b) => round(b.x / b.n))
  const accuracy = blocks.map((b) => round(b.y / b.n))
  const brier = (predicted: (confidence: number) => number): number => rows.reduce((sum, r) => sum + (predicted(r.confidence) - r.right) ** 2, 0) / rows.length
  const map = { confidence: Float64Array.from(confidence), accuracy: Float64Array.from(accuracy) }
  return {
    isotonic: { confidence, accuracy },
    brier_before: round(brier((c) => c)),
    brier_after: round(brier((c) => isotonicAt(map, c))),
    rows: rows.length,
  }
}

export interface Calibrated {
  /** The calibration file (beside the config): written when a model was fitted, else left as it was. */
  readonly path: string
  readonly written: boolean
  /** The ensembles whose members it fitted. */
  readonly ensembles: readonly string[]
  /** Members with a probabilities output: those it tried to fit. */
  readonly candidates: readonly string[]
  readonly models: Record<string, ModelCalibration>
  /** Models whose temperature the rows did not pin down (temperatureUnpinned): fitted and written, with a warning. */
  readonly unpinned: readonly string[]
  /**
   * Rows left out of each model's fit because its probabilities were not finite numbers (NaN or
   * Infinity, e.g. from a feature beyond the model's float range). A model every row of which was
   * left out is here and not in `models`: it is not calibrated.
   */
  readonly skipped: Record<string, number>
  /** Rows a model gave no probabilities for (it failed, or was over the budget): left out of its fit too. */
  readonly unanswered: Record<string, number>
}

/**
 * Fits every member of the chosen ensembles that has a probabilities output; writes
 * `<config>.calibration.json` only when a model was fitted and every fit is one the config
 * would accept, each entry with its data set and time.
 */
export async function calibrate(
  config: GatewayConfig,
  data: LabeledData,
  ensembles: readonly string[] | undefined,
  method: CalibrationMethod = 'temperature',
  checks: Pick<EvalOptions, 'budgets' | 'profile'> & { readonly lock?: FileLockOptions } = {},
): Promise<Calibrated> {
  // Without --ensembles: those the data set fits, as the run that follows scores. The run's
  // budgets and latency profile are checked here too: a refused command writes no file.
  const { names } = await planEval(config, data, { ensembles, budgets: checks.budgets, profile: checks.profile })
  const { gateway, solos } = evalGateway(config, names)
  const models: Record<string, ModelCalibration> = {}
  const skipped: Record<string, number> = {}
  const unanswered: Record<string, number> = {}
  const unpinned: string[] = []
  const candidates: string[] = []
  try {
    await gateway.load()
    for (const name of names) {
      const ens = gateway.ensemble(name)
      const input = featureInput(ens.name, ens.inputs, data)
      for (const member of ens.models) {
        if (member.name in models || member.name in skipped || member.name in unanswered) continue // fitted for an ensemble before
        const solo = gateway.ensemble(solos.get(member.name)!)
        const spec = findProbabilitiesOutput(solo.outputs)
        if (spec === undefined) continue
        candidates.push(member.name)
        checkClassIndices(data, spec.shape[spec.shape.length - 1]!, `${member.name}'s probabilities`)
        const probs = new RowsOf()
        const labels: number[] = []
        let nonFinite = 0
        for (let i = 0; i < data.rows; i++) {
          // A generous budget: calibration wants every answer, not a race.
          const result = await predictRow(gateway, solo.name, input, data, i, solo.config.budget.max)
          const tensor = result.outputs?.[spec.name]
          if (tensor === undefined) {
            unanswered[member.name] = (unanswered[member.name] ?? 0) + 1
            continue
          }
          // One NaN would make every fitted figure NaN: such a row tells nothing about calibration.
          if (!probs.add(tensor.data.length, (c) => numberAt(tensor, c), `${member.name}'s probabilities`)) {
            nonFinite++
            continue
          }
          labels.push(data.truth[i]!)
        }
        if (nonFinite > 0) skipped[member.name] = nonFinite
        if (labels.length === 0) continue
        const flat = probs.values()
        const fit = method === 'isotonic' ? fitIsotonic(flat, probs.classes, labels) : fitTemperature(flat, probs.classes, labels)
        models[member.name] = fit
        if ('temperature' in fit && temperatureUnpinned(flat, probs.classes, labels, fit.temperature)) unpinned.push(member.name)
      }
    }
  } finally {
    await gateway.close()
  }
  // The gateway refuses a config whose calibration file it cannot use: nothing is written that it would refuse.
  for (const [model, fit] of Object.entries(models)) {
    try {
      calibrationOf(model, fit)
    } catch (err) {
      throw new EvalInputError(`--calibrate: the ${method} fit of ${model} is not usable (${(err as Error).message}); nothing written`)
    }
  }
  const path = calibrationPath(config.file)
  // Nothing fitted: the file (and what it says of earlier fits) stays as it was.
  if (Object.keys(models).length === 0) return { path, written: false, ensembles: names, candidates, models, unpinned, skipped, unanswered }
  const origin = { data: data.file, fitted_at: new Date().toISOString() }
  try {
    // The fits above take long and need no lock: only the file's read-merge-write holds it, so
    // a run on the same config at once waits for that, not for this run's fits.
    await writeCalibration(config.file, Object.fromEntries(Object.entries(models).map(([model, fit]) => [model, { ...fit, ...origin }])), checks.lock)
  } catch (err) {
    throw new EvalInputError(`--calibrate: cannot write the calibration file beside ${shownPath(config.file)}: ${(err as Error).message}`)
  }
  return { path, written: true, ensembles: names, candidates, models, unpinned, skipped, unanswered }
}

/** Rows of probabilities in one flat array (`classes` a row), grown by half again when full. */
export class RowsOf {
  classes = 0
  private rows = 0
  private flat = new Float64Array(0)

  /** Adds a row of `classes` values unless one is not finite (false); every row must have as many as the first. */
  add(classes: number, at: (c: number) => number, what: string): boolean {
    if (this.rows === 0) this.classes = classes
    else if (classes !== this.classes) throw new EvalInputError(`${what}: ${classes} values in a row after ${this.classes} in the first`)
    const start = this.rows * classes
    if (start + classes > this.flat.length) {
      const grown = new Float64Array(Math.max(64 * classes, Math.ceil((this.flat.length * 1.5) / classes) * classes))
      grown.set(this.flat)
      this.flat = grown
    }
    for (let c = 0; c < classes; c++) {
      const v = at(c)
      if (!Number.isFinite(v)) return false
      this.flat[start + c] = v
    }
    this.rows++
    return true
  }

  /** The rows added, row after row. */
  values(): Float64Array {
    return this.flat.subarray(0, this.rows * this.classes)
  }
}
