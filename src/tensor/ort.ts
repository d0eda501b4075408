// ONNX Runtime tensors (the worker's side of the worker wire: tensors cross the thread
// boundary as plain {datatype, shape, data}; here they become ort.Tensor and back).
// Imported only where onnxruntime runs, so nothing else loads the native module.
import ort from 'onnxruntime-node'
import { DATATYPES, fromOrtType } from './datatypes.ts'
import { elementCount, MAX_EMPTY_CELLS, refuseUnservable, tooManyEmptyCells, type Tensor, type TensorMap, type TensorSpec } from './tensor.ts'

export function toOrtTensor(tensor: Tensor): ort.Tensor {
  const t = new ort.Tensor(DATATYPES[tensor.datatype].ort, tensor.data as ort.Tensor.DataType, tensor.shape as number[])
  // ort.Tensor turns FP16 bits back into a Float16Array, which the binding reads as 0 bytes: it is given the bits.
  if (tensor.datatype === 'FP16') Object.defineProperty(t, 'data', { value: fp16Bits(tensor.data) })
  return t
}

/**
 * FP16 data as the binding reads it: onnxruntime-node 1.30 takes a Float16Array's byte
 * length as 0 (its first run fails "not enough space"), and a Uint16Array of the same bits
 * as they are. A view, not a copy.
 */
function fp16Bits(data: Tensor['data']): Tensor['data'] {
  const d = data as Float16Array
  return new Uint16Array(d.buffer, d.byteOffset, d.length)
}

/** A session's output as a Tensor; its data is the session's own buffer (transferable). */
export function fromOrtTensor(name: string, t: ort.Tensor): Tensor {
  const datatype = fromOrtType(t.type)
  if (!datatype) throw new Error(`output "${name}" has unsupported type ${t.type}`)
  const data = t.data as Tensor['data']
  // As an upstream's answer (readShape): a model's empty output whose nested JSON would be vast is refused, not built.
  if (data.length === 0 && tooManyEmptyCells(t.dims)) throw new Error(`output "${name}" holds no elements in more than ${MAX_EMPTY_CELLS} cells (shape [${t.dims.join(', ')}])`)
  // FP16 bits (ours, or a binding without Float16Array) are read as the numbers they encode.
  if (datatype === 'FP16' && data instanceof Uint16Array) return { datatype, shape: t.dims.slice(), data: new Float16Array(data.buffer, data.byteOffset, data.length) }
  return { datatype, shape: t.dims.slice(), data }
}

export function toOrtFeeds(inputs: TensorMap): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {}
  for (const name in inputs) feeds[name] = toOrtTensor(inputs[name] as Tensor)
  return feeds
}

/** A feed as onnxruntime-node's binding reads it (the fields of an ort.Tensor it uses). */
export interface NativeFeed {
  readonly location: 'cpu'
  readonly type: ort.Tensor.Type
  readonly dims: readonly number[]
  readonly data: Tensor['data']
}

/**
 * Feeds for the native session (executors/onnx/native.ts): plain objects, which the binding
 * reads faster than ort.Tensor's getters (measured ~0.6 µs of a ~12 µs run).
 */
export function toNativeFeeds(inputs: TensorMap): Record<string, NativeFeed> {
  const feeds: Record<string, NativeFeed> = {}
  for (const name in inputs) {
    const t = inputs[name] as Tensor
    feeds[name] = { location: 'cpu', type: DATATYPES[t.datatype].ort, dims: t.shape, data: t.datatype === 'FP16' ? fp16Bits(t.data) : t.data }
  }
  return feeds
}

/** A session's declared inputs or outputs (`role`) as specs (dynamic dimensions as -1). */
export function specsOf(meta: readonly ort.InferenceSession.ValueMetadata[], role: 'input' | 'output'): TensorSpec[] {
  return meta.map((m) => {
    refuseUnservable(m.name, role)
    if (!m.isTensor) throw new Error(`"${m.name}" is not a tensor (sklearn models need zipmap=False)`)
    const datatype = fromOrtType(m.type)
    if (!datatype) throw new Error(`"${m.name}" has unsupported type ${m.type}`)
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) }
  })
}

/** Zeros in the declared shape (dynamic dimensions as 1): a warm-up input. */
export function zerosFor(spec: TensorSpec): Tensor {
  // A tensor of any rank is shown [-1]: warmed up as that, a vector (many graphs refuse a scalar).
  const shape = spec.anyRank ? [1] : spec.shape.map((d) => (d < 0 ? 1 : d))
  const n = elementCount(shape)
  const array = DATATYPES[spec.datatype].array
  return { datatype: spec.datatype, shape, data: array ? new array(n) : new Array<string>(n).fill('') }
}
