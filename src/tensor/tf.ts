// TensorFlow's wire forms: TensorProto (TF Serving's Predict over gRPC, Seldon's tftensor)
// and tf.Example (TF Serving's Classify and Regress, over REST and gRPC). Numbers go out
// packed in tensor_content, as TF's own clients send them; answers are read from
// tensor_content or from the typed field the datatype table names.
import { DATATYPES, fromTfDtype, isFloat, type TensorData } from './datatypes.ts'
import { decodeElements } from './elements.ts'
import { nestedJson } from './json.ts'
import { fromRaw } from './raw.ts'
import { datatypeName, elementCount, fail, formatShape, quote, readShape, type Failure, type Tensor, type WireTensor } from './tensor.ts'

/** A TensorProto as proto-loader hands it over (64-bit integers as decimal strings). */
export interface TensorProto {
  dtype?: string
  tensor_shape?: { dim?: { size?: number | string }[] } | null
  tensor_content?: Uint8Array
  [field: string]: unknown
}

export interface NamedTensor {
  readonly name: string
  readonly tensor: Tensor
}

/** A tensor as a TensorProto: numbers packed in tensor_content, strings in string_val. */
export function toTensorProto(tensor: Tensor): TensorProto {
  const row = DATATYPES[tensor.datatype]
  const tensor_shape = { dim: tensor.shape.map((size) => ({ size })) }
  const { data } = tensor
  if (Array.isArray(data)) return { dtype: row.tf, tensor_shape, string_val: data.map((s) => Buffer.from(s, 'utf8')) }
  return { dtype: row.tf, tensor_shape, tensor_content: Buffer.from(data.buffer, data.byteOffset, data.byteLength) }
}

/** What the one-value fills of one answer have expanded to so far, in bytes held (see fromTensorProto). */
export interface Fills {
  bytes: number
}

/**
 * An upstream's TensorProto as a wire tensor (checked against the declaration later).
 * `maxBytes` (the model's max_response_bytes) bounds what the one-value fills of an answer
 * (`fills`, shared by its tensors) may expand to, counted as what they hold in memory: a
 * number at its width, a BYTES element at least a reference (8 bytes).
 */
export function fromTensorProto(proto: TensorProto, failure: Failure, name: string, maxBytes: number, fills: Fills = { bytes: 0 }): WireTensor {
  const datatype = fromTfDtype(proto.dtype ?? '')
  if (!datatype) return fail(failure, name, `dtype ${datatypeName(proto.dtype)} is not supported`)
  const shape = readShape(proto.tensor_shape?.dim?.map((d) => d.size ?? 0) ?? [], failure, name)
  const count = elementCount(shape)
  if (proto.tensor_content && proto.tensor_content.byteLength > 0) return { datatype, shape, data: fromRaw(proto.tensor_content, datatype, shape, failure, name) }
  const row = DATATYPES[datatype]
  let values = (proto[row.tfField] ?? []) as ArrayLike<unknown>
  // half_val holds FP16 bit patterns, one per int32.
  if (datatype === 'FP16') values = new Float16Array(Uint16Array.from(values as ArrayLike<number>).buffer)
  // TensorProto lets one value stand for a whole tensor filled with it: a few bytes on the
  // wire, so the shape is checked before anything of that size is allocated, and the value is
  // decoded once and copied, with no array of `count` boxed values in between.
  if (values.length === 1 && count > 1) {
    const held = count * (row.width || 8)
    if (fills.bytes + held > maxBytes) fail(failure, name, `one value fills shape ${formatShape(shape)}, more than max_response_bytes (${maxBytes}) would hold${fills.bytes ? ' with the answer\'s other fills' : ''}`)
    fills.bytes += held
    const one = decodeElements(values, datatype, failure, name)
    const data = Array.isArray(one) ? new Array<string>(count).fill(one[0] as string) : (new (one.constructor as new (n: number) => typeof one)(count) as typeof one).fill(one[0] as never)
    return { datatype, shape, data }
  }
  // Decoded as the wire datatype (64-bit integers arrive as decimal strings), so the answer
  // can then fill any declared type its values fit.
  return { datatype, shape, data: decodeElements(values, datatype, failure, name) }
}

type FeatureKind = 'float' | 'int64' | 'bytes'

const featureKind = (tensor: Tensor): FeatureKind => (tensor.datatype === 'BYTES' ? 'bytes' : isFloat(tensor.datatype) ? 'float' : 'int64')

/**
 * Rows of the batch and each input's row width. A row (an example, an instance) is a slice
 * of every input's first dimension, so every input must have one and share its size: else
 * the width would be a fraction and the rows would cut the inputs at the wrong places.
 */
function rowsOf(inputs: readonly NamedTensor[], failure: Failure): { rows: number; width: (t: Tensor) => number } {
  const first = inputs[0]
  const rows = first?.tensor.shape[0] ?? 0
  for (let i = 0; i < inputs.length; i++) {
    const { name, tensor } = inputs[i]!
    if (tensor.shape.length === 0) fail(failure, name, 'shape [] has no rows to send as examples or instances (one per row of every input)')
    if (tensor.shape[0] !== rows) fail(failure, name, `shape ${formatShape(tensor.shape)} has ${tensor.shape[0]} rows, input ${quote(first!.name)} has ${rows}: every input must have the batch's rows (one example or instance each)`)
  }
  return { rows, width: (t) => (rows === 0 ? 0 : t.data.length / rows) }
}

/** Rows of a batch examplesJson or examplesProto took (they refuse inputs that disagree on it). */
export const batchRows = (inputs: readonly NamedTensor[]): number => inputs[0]?.tensor.shape[0] ?? 0

const INT64_MAX = 2n ** 63n - 1n

/**
 * Rows of tf.Examples: as rowsOf, and no UINT64 element beyond int64_list's range (TF
 * Serving's REST refuses it; the proto would wrap 2^64 - 1 to -1). Refused, as Seldon's
 * data.tensor refuses what it would round.
 */
function exampleRows(inputs: readonly NamedTensor[], failure: Failure): { rows: number; width: (t: Tensor) => number } {
  for (let i = 0; i < inputs.length; i++) {
    const { name, tensor } = inputs[i]!
    const { data } = tensor
    if (!(data instanceof BigUint64Array)) continue
    for (let j = 0; j < data.length; j++) {
      if (data[j]! > INT64_MAX) fail(failure, name, `element ${j} is ${data[j]}, beyond int64 (2^63 - 1): a tf.Example's int64_list cannot carry it`)
    }
  }
  return rowsOf(inputs, failure)
}

function rowValues(tensor: Tensor, row: number, width: number): ArrayLike<unknown> {
  const { data } = tensor
  return Array.isArray(data) ? data.slice(row * width, (row + 1) * width) : (data as Float32Array).subarray(row * width, (row + 1) * width)
}

/**
 * REST: the JSON "examples" list, one Example per batch row, one feature per input. TF
 * Serving types a feature by its JSON literals (a number with a decimal point or an exponent
 * is a float, without either an int64), so a whole float is written with `.0`.
 */
export function examplesJson(inputs: readonly NamedTensor[], failure: Failure): string {
  const { rows, width } = exampleRows(inputs, failure)
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
  if (kind === 'int64') return String(v)
  const n = v as number
  if (Number.isNaN(n)) return 'NaN'
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity'
  // An exponent already makes the literal a float (and `3.4e+38.0` is not JSON).
  const s = String(n)
  return Number.isInteger(n) && !s.includes('e') ? `${s}.0` : s
}

/**
 * REST predict's body: the columnar "inputs" object, or the row "instances" list (an object
 * per row when there are several inputs). Elements are the literals TF Serving's JSON reader
 * takes (nestedJson's tfLiterals): NaN, ±Infinity and 64-bit integers bare, BOOL as true/false.
 */
export function predictJson(signature: string, inputs: readonly NamedTensor[], rowFormat: boolean, failure: Failure): string {
  const head = `{"signature_name":${JSON.stringify(signature)},`
  const field = (name: string, tensor: Tensor): string => `${JSON.stringify(name)}:${nestedJson(tensor, true)}`
  if (!rowFormat) return `${head}"inputs":{${inputs.map(({ name, tensor }) => field(name, tensor)).join(',')}}}`
  if (inputs.length === 1) return `${head}"instances":${nestedJson(inputs[0]!.tensor, true)}}`
  const { rows, width } = rowsOf(inputs, failure)
  const instances = new Array<string>(rows)
  for (let r = 0; r < rows; r++) {
    const row = (tensor: Tensor): Tensor => ({ datatype: tensor.datatype, shape: tensor.shape.slice(1), data: rowValues(tensor, r, width(tensor)) as TensorData })
    instances[r] = `{${inputs.map(({ name, tensor }) => field(name, row(tensor))).join(',')}}`
  }
  return `${head}"instances":[${instances.join(',')}]}`
}

/** gRPC: tensorflow.serving.Input with an ExampleList, as plain objects for proto-loader. */
export function examplesProto(inputs: readonly NamedTensor[], failure: Failure): object {
  const { rows, width } = exampleRows(inputs, failure)
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
            : { int64_list: { value: Array.from(values, String) } }
    }
    examples[r] = { features: { feature } }
  }
  return { example_list: { examples } }
}
