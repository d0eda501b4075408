// Helpers shared by the built-in strategies: which output a strategy reads (resolved once
// per ensemble at config load), and the per-outcome reads on the hot path (a vote's key,
// a quality score). Nothing here allocates per element; callers keep per-request state.
import { elementCount, isFloat, numberAt, type DataType, type Tensor, type TensorMap, type TensorSpec } from '../tensor/index.ts'
import type { Decision, Votes } from '../types.ts'
import type { Calibration, IsotonicMap } from '../config/calibration.ts'

/** Integer, bool and string outputs carry labels; floats carry scores or values. */
export const isLabelType = (datatype: DataType): boolean => !isFloat(datatype)

/**
 * A float output of rank >= 2 whose last (class) dimension is > 1. A dynamic last
 * dimension only counts when the name says so, since a regression output may be [-1, -1].
 */
export function isProbabilitiesLike(spec: TensorSpec): boolean {
  if (!isFloat(spec.datatype) || spec.shape.length < 2) return false
  const last = spec.shape[spec.shape.length - 1] ?? 1
  return last > 1 || (last < 0 && /prob/i.test(spec.name))
}

/** The output named `label`, else the first label-typed one. */
export function findLabelOutput(outputs: readonly TensorSpec[]): TensorSpec | undefined {
  return outputs.find((o) => o.name === 'label') ?? outputs.find((o) => isLabelType(o.datatype))
}

/** The output named `probabilities` if it qualifies, else the first probabilities-like one. */
export function findProbabilitiesOutput(outputs: readonly TensorSpec[]): TensorSpec | undefined {
  const named = outputs.find((o) => o.name === 'probabilities' && isProbabilitiesLike(o))
  return named ?? outputs.find(isProbabilitiesLike)
}

/** What majority-vote votes on: a label output, argmax of a probabilities output, or a value. */
export type VoteSource =
  | { readonly kind: 'label'; readonly name: string }
  | { readonly kind: 'argmax'; readonly name: string }
  | { readonly kind: 'regression'; readonly name: string }

export type Invalid = { readonly kind: 'invalid'; readonly message: string }

function sourceFor(spec: TensorSpec): VoteSource {
  if (isLabelType(spec.datatype)) return { kind: 'label', name: spec.name }
  if (isProbabilitiesLike(spec)) return { kind: 'argmax', name: spec.name }
  return { kind: 'regression', name: spec.name }
}

/** Resolves the vote source for an ensemble; `output` (the strategy option) wins when set. */
export function resolveVoteSource(outputs: readonly TensorSpec[], output?: string): VoteSource | Invalid {
  if (output !== undefined) {
    const spec = outputs.find((o) => o.name === output)
    if (spec === undefined) {
      return { kind: 'invalid', message: `output "${output}" is not an output of every model (${names(outputs)})` }
    }
    return sourceFor(spec)
  }
  const label = findLabelOutput(outputs)
  if (label !== undefined) return { kind: 'label', name: label.name }
  const probs = findProbabilitiesOutput(outputs)
  if (probs !== undefined) return { kind: 'argmax', name: probs.name }
  const value = outputs.find((o) => isFloat(o.datatype))
  if (value !== undefined) return { kind: 'regression', name: value.name }
  return { kind: 'invalid', message: `no output to vote on: need a label, probabilities or float output (${names(outputs)})` }
}

/** Where best-quality reads a model's quality from. */
export type QualitySource =
  | { readonly kind: 'output'; readonly name: string }
  | { readonly kind: 'maxprob'; readonly name: string }
  | { readonly kind: 'static' }

export function resolveQualitySource(outputs: readonly TensorSpec[], qualityOutput?: string): QualitySource | Invalid {
  if (qualityOutput !== undefined) {
    const spec = outputs.find((o) => o.name === qualityOutput)
    if (spec === undefined) {
      return { kind: 'invalid', message: `quality_output "${qualityOutput}" is not an output of every model (${names(outputs)})` }
    }
    if (spec.datatype === 'BYTES') return { kind: 'invalid', message: `quality_output "${qualityOutput}" is BYTES, not numeric` }
    return { kind: 'output', name: spec.name }
  }
  const probs = findProbabilitiesOutput(outputs)
  return probs === undefined ? { kind: 'static' } : { kind: 'maxprob', name: probs.name }
}

const names = (outputs: readonly TensorSpec[]): string =>
  outputs.length === 0 ? 'none declared' : `declared: ${outputs.map((o) => o.name).join(', ')}`

/**
 * Rows of a request, as a collector is told them (Strategy.collector): the first dimension
 * its inputs share when every declared input's is dynamic (-1, a batch); undefined otherwise
 * (a fixed first dimension, inputs of different lengths such as ragged tokens and offsets:
 * then the first dimension is not the batch).
 */
export function requestRows(inputs: TensorMap, declared: readonly TensorSpec[]): number | undefined {
  let rows: number | undefined
  for (let i = 0; i < declared.length; i++) {
    const spec = declared[i]!
    if (spec.shape[0] !== -1) return undefined
    const n = inputs[spec.name]?.shape[0]
    if (n === undefined || (rows !== undefined && n !== rows)) return undefined
    rows = n
  }
  return rows
}

/** Rows of an answer: its first dimension (1 for a scalar). */
export const answerRows = (tensor: Tensor): number => (tensor.shape.length === 0 ? 1 : tensor.shape[0]!)

/** Size of the last dimension (the class axis) as the tensor actually came back. */
export function classCount(tensor: Tensor): number {
  return tensor.shape.length === 0 ? 1 : (tensor.shape[tensor.shape.length - 1] ?? 1)
}

/** Whether every element of a numeric tensor is finite (strings and 64-bit integers always are): a NaN or ±∞ answer is a broken one. */
export function allFinite(tensor: Tensor): boolean {
  const { data } = tensor
  if (Array.isArray(data) || data instanceof BigInt64Array || data instanceof BigUint64Array) return true
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return false
  return true
}

/** Index of the largest value in row `row` (first one wins a tie, like numpy's argmax). */
export function argmaxAt(tensor: Tensor, row: number, classes: number): number {
  const base = row * classes
  let best = 0
  let bestValue = numberAt(tensor, base)
  for (let c = 1; c < classes; c++) {
    const v = numberAt(tensor, base + c)
    if (v > bestValue) {
      best = c
      bestValue = v
    }
  }
  return best
}

/** Argmax per row of a [..., classes] tensor. */
export function argmaxRows(tensor: Tensor): Int32Array {
  const classes = classCount(tensor)
  const rows = classes > 0 ? Math.floor(elementCount(tensor.shape) / classes) : 0
  const out = new Int32Array(rows)
  for (let r = 0; r < rows; r++) out[r] = argmaxAt(tensor, r, classes)
  return out
}

/**
 * A model's vote as a string key: its whole label vector for the request, joined with ','
 * (a single-row request's key is just its label). Undefined when the output is missing,
 * so the caller can count the model as not voting.
 */
export function labelKey(outputs: TensorMap, source: VoteSource): string | undefined {
  const tensor = outputs[source.name]
  if (tensor === undefined) return undefined
  if (source.kind === 'argmax') {
    const classes = classCount(tensor)
    const rows = classes > 0 ? Math.floor(elementCount(tensor.shape) / classes) : 0
    if (rows === 1) return String(argmaxAt(tensor, 0, classes))
    let key = ''
    for (let r = 0; r < rows; r++) key += (r === 0 ? '' : ',') + String(argmaxAt(tensor, r, classes))
    return key
  }
  const data = tensor.data
  if (data.length === 1) return String(data[0])
  let key = ''
  for (let i = 0; i < data.length; i++) key += (i === 0 ? '' : ',') + String(data[i])
  return key
}

/** Mean of all values; NaN for an empty or missing tensor. */
export function meanOf(tensor: Tensor | undefined): number {
  if (tensor === undefined || tensor.data.length === 0) return Number.NaN
  let sum = 0
  for (let i = 0; i < tensor.data.length; i++) sum += numberAt(tensor, i)
  return sum / tensor.data.length
}

/**
 * Rounding in a model's own arithmetic can put a probability a hair outside [0, 1]: about
 * 1e-7 in FP32, 1e-3 in FP16 (a 1 - p there lands within 2^-10 of the truth).
 */
const slackOf = (tensor: Tensor): number => (tensor.datatype === 'FP16' ? 1e-3 : 1e-6)
/** A probability: in [0, 1] give or take `slack` (false for NaN, ±Infinity, a logit). */
const isProbability = (p: number, slack: number): boolean => p >= -slack && p <= 1 + slack

/**
 * Mean over rows of each row's largest probability, or of an isotonic map at it (the chance,
 * measured on a labeled set, that an answer this confident is right); NaN for an empty or
 * missing tensor, or one holding a value that is not a probability (a broken upstream's
 * Infinity, a logit such as 1e30 or -3): its largest value says nothing about confidence.
 */
export function meanRowMax(tensor: Tensor | undefined, isotonic?: IsotonicMap): number {
  if (tensor === undefined) return Number.NaN
  const classes = classCount(tensor)
  const rows = classes > 0 ? Math.floor(elementCount(tensor.shape) / classes) : 0
  const slack = slackOf(tensor)
  if (rows === 0) return Number.NaN
  let sum = 0
  for (let r = 0; r < rows; r++) {
    const base = r * classes
    let max = 0
    for (let c = 0; c < classes; c++) {
      const p = numberAt(tensor, base + c)
      if (!isProbability(p, slack)) return Number.NaN
      if (p > max) max = p
    }
    if (max > 1) max = 1
    sum += isotonic === undefined ? max : isotonicAt(isotonic, max)
  }
  return sum / rows
}

/**
 * Mean over rows of each row's largest probability after temperature scaling: the largest
 * of softmax(log p / T) is 1 / Σ_j (p_j / p_max)^(1/T). NaN for an empty or missing tensor,
 * an all-zero row, or a value that is not a probability (as meanRowMax).
 */
export function meanCalibratedRowMax(tensor: Tensor | undefined, temperature: number): number {
  if (tensor === undefined) return Number.NaN
  const classes = classCount(tensor)
  const rows = classes > 0 ? Math.floor(elementCount(tensor.shape) / classes) : 0
  const slack = slackOf(tensor)
  if (rows === 0) return Number.NaN
  const power = 1 / temperature
  let sum = 0
  for (let r = 0; r < rows; r++) {
    const base = r * classes
    let max = 0
    for (let c = 0; c < classes; c++) {
      const p = numberAt(tensor, base + c)
      if (!isProbability(p, slack)) return Number.NaN
      if (p > max) max = p
    }
    if (!(max > 0)) return Number.NaN
    let z = 0
    for (let c = 0; c < classes; c++) {
      const p = numberAt(tensor, base + c)
      if (p > 0) z += (p / max) ** power
    }
    sum += 1 / z
  }
  return sum / rows
}

/** The map at `x`: linear between its points, flat beyond the first and the last. */
export function isotonicAt(map: IsotonicMap, x: number): number {
  const { confidence: xs, accuracy: ys } = map
  const last = xs.length - 1
  if (!(x > xs[0]!)) return ys[0]!
  if (x >= xs[last]!) return ys[last]!
  let lo = 0
  let hi = last
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1
    if (xs[mid]! <= x) lo = mid
    else hi = mid
  }
  return ys[lo]! + ((ys[hi]! - ys[lo]!) * (x - xs[lo]!)) / (xs[hi]! - xs[lo]!)
}

/**
 * Quality of an ok outcome: the ensemble's declared quality output; else the model's static
 * `quality` from config, the operator's word, which stands in for its own (calibrated or raw)
 * maximum probability (uncalibratedWarning counts on this); else that maximum; else 0. A
 * missing or empty output, a non-finite score (a quality output of Infinity) or a
 * probabilities output that holds no probabilities scores -Infinity: comparisons stay total,
 * such a model never clears good_enough and wins only when nothing else answered.
 */
export function quality(outputs: TensorMap, source: QualitySource, staticQuality: number | undefined, calibration?: Calibration): number {
  let q: number
  if (source.kind === 'output') q = meanOf(outputs[source.name])
  else if (staticQuality !== undefined) q = staticQuality
  else if (source.kind === 'maxprob') q = maxProbQuality(outputs[source.name], calibration)
  else q = 0
  return Number.isFinite(q) ? q : Number.NEGATIVE_INFINITY
}

function maxProbQuality(tensor: Tensor | undefined, calibration: Calibration | undefined): number {
  if (calibration === undefined) return meanRowMax(tensor)
  return typeof calibration === 'number' ? meanCalibratedRowMax(tensor, calibration) : meanRowMax(tensor, calibration)
}

// Shared, frozen failure decisions: returning them allocates nothing.
const EMPTY_VOTES: Votes = Object.freeze({})

export const ALL_FAILED: Decision = Object.freeze({ kind: 'fail', code: 'ALL_MODELS_FAILED', reason: 'all-failed', votes: null })
export const DEADLINE: Decision = Object.freeze({ kind: 'fail', code: 'DEADLINE_EXCEEDED', reason: 'deadline', votes: null })
/** Classification decisions always carry votes, even when there were none. */
export const ALL_FAILED_VOTED: Decision = Object.freeze({ ...ALL_FAILED, votes: EMPTY_VOTES })
export const DEADLINE_VOTED: Decision = Object.freeze({ ...DEADLINE, votes: EMPTY_VOTES })
