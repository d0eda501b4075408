// TF Serving's Classify and Regress: the request is a list of tf.Examples, not tensors.
// Each batch row becomes one Example, each declared input one feature of it holding that
// row's values (float_list for floats, int64_list for integers and booleans, bytes_list
// for strings). The answers become tensors named as TF's classification and regression
// signatures name theirs: `classes` and `scores` ([rows, K]), `outputs` ([rows]).
import type { Tensor } from '../types.ts'
import { badResponse } from './remote/errors.ts'
import type { UpstreamInput, UpstreamMetadata } from './remote/executor.ts'
import type { RawOutputs, RawTensor } from './remote/tensors.ts'

export const TF_METHODS = ['predict', 'classify', 'regress'] as const
export type TfMethod = (typeof TF_METHODS)[number]

/** What Classify and Regress answer with; the inputs are whatever features YAML declares. */
export const EXAMPLE_METHOD_METADATA: Readonly<Record<Exclude<TfMethod, 'predict'>, UpstreamMetadata>> = {
  classify: {
    inputs: [],
    outputs: [
      { name: 'classes', datatype: 'BYTES', shape: [-1, -1] },
      { name: 'scores', datatype: 'FP32', shape: [-1, -1] },
    ],
  },
  regress: { inputs: [], outputs: [{ name: 'outputs', datatype: 'FP32', shape: [-1] }] },
}

type FeatureKind = 'float' | 'int64' | 'bytes'

function featureKind(tensor: Tensor): FeatureKind {
  if (tensor.datatype === 'BYTES') return 'bytes'
  return tensor.datatype.startsWith('FP') ? 'float' : 'int64'
}

/** Rows of each input: the batch is the first dimension, shared by every input. */
function rowsOf(inputs: readonly UpstreamInput[]): { rows: number; width: (t: Tensor) => number } {
  const rows = inputs[0]?.tensor.shape[0] ?? 0
  return { rows, width: (t) => (rows === 0 ? 0 : t.data.length / rows) }
}

const rowValues = (tensor: Tensor, row: number, width: number): ArrayLike<unknown> => {
  const { data } = tensor
  return Array.isArray(data) ? data.slice(row * width, (row + 1) * width) : (data as Float32Array).subarray(row * width, (row + 1) * width)
}

/**
 * REST: the JSON "examples" list. TF Serving types a feature by its JSON literals (a number
 * with a decimal point is a float, without one an int64), so floats are always written with one.
 */
export function examplesJson(inputs: readonly UpstreamInput[]): string {
  const { rows, width } = rowsOf(inputs)
  const features = inputs.map(({ name, tensor }) => ({ key: JSON.stringify(name), tensor, kind: featureKind(tensor), width: width(tensor) }))
  const examples = new Array<string>(rows)
  for (let r = 0; r < rows; r++) {
    const fields = features.map((f) => `${f.key}:[${Array.from(rowValues(f.tensor, r, f.width), (v) => literal(v, f.kind)).join(',')}]`)
    examples[r] = `{${fields.join(',')}}`
  }
  return `[${examples.join(',')}]`
}

function literal(v: unknown, kind: FeatureKind): string {
  if (kind === 'bytes') return JSON.stringify(String(v))
  if (kind === 'int64') return String(typeof v === 'boolean' ? Number(v) : v)
  const n = v as number
  if (Number.isNaN(n)) return 'NaN'
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity'
  return Number.isInteger(n) ? `${n}.0` : String(n)
}

/** gRPC: tensorflow.serving.Input with an ExampleList, as plain objects for proto-loader. */
export function examplesProto(inputs: readonly UpstreamInput[]): object {
  const { rows, width } = rowsOf(inputs)
  const examples = new Array<object>(rows)
  for (let r = 0; r < rows; r++) {
    const feature: Record<string, object> = {}
    for (const { name, tensor } of inputs) {
      const values = rowValues(tensor, r, width(tensor))
      const kind = featureKind(tensor)
      feature[name] =
        kind === 'bytes'
          ? { bytes_list: { value: Array.from(values, (v) => Buffer.from(String(v), 'utf8')) } }
          : kind === 'float'
            ? { float_list: { value: Array.from(values as ArrayLike<number>) } }
            : { int64_list: { value: Array.from(values, (v) => String(typeof v === 'boolean' ? Number(v) : v)) } }
    }
    examples[r] = { features: { feature } }
  }
  return { example_list: { examples } }
}

/** [[label, score], ...] per example (REST) or {classes: [{label, score}]} per example (gRPC) → classes and scores. */
export function classifications(perExample: readonly unknown[], rows: number, pair: (c: unknown) => [unknown, unknown]): RawOutputs {
  if (perExample.length !== rows) throw badResponse(`${perExample.length} classifications for ${rows} examples`)
  const k = Array.isArray(perExample[0]) ? perExample[0].length : -1
  const labels: unknown[] = []
  const scores: unknown[] = []
  for (const classes of perExample) {
    if (!Array.isArray(classes) || classes.length !== k) throw badResponse('classifications differ in their number of classes, or are not lists')
    for (const c of classes) {
      const [label, score] = pair(c)
      labels.push(label)
      scores.push(score)
    }
  }
  const shape = [rows, k]
  return new Map<string, RawTensor>([
    ['classes', { datatype: 'BYTES', shape, data: labels }],
    ['scores', { datatype: 'FP32', shape, data: scores }],
  ])
}

export function regressions(values: readonly unknown[], rows: number): RawOutputs {
  if (values.length !== rows) throw badResponse(`${values.length} regressions for ${rows} examples`)
  return new Map<string, RawTensor>([['outputs', { datatype: 'FP32', shape: [rows], data: values }]])
}

/** A REST class: ["label", score]. */
export function restPair(c: unknown): [unknown, unknown] {
  if (!Array.isArray(c) || c.length !== 2) throw badResponse('a class is not a [label, score] pair')
  return [c[0], c[1]]
}

/** A gRPC tensorflow.serving.Class. */
export function grpcPair(c: unknown): [unknown, unknown] {
  const { label, score } = (c ?? {}) as { label?: unknown; score?: unknown }
  return [label ?? '', score ?? 0]
}

export function batchRows(inputs: readonly UpstreamInput[]): number {
  return rowsOf(inputs).rows
}
