import { GatewayError } from './errors.ts'
import type { DataType, Tensor, TensorData, TensorSpec } from './types.ts'

type NumericCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor

const numericCtors: Readonly<Record<Exclude<DataType, 'INT64' | 'BYTES'>, NumericCtor>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  FP32: Float32Array,
  FP64: Float64Array,
}

const integerTypes = new Set<DataType>(['BOOL', 'UINT8', 'INT8', 'INT16', 'INT32', 'INT64'])

export const isDataType = (value: unknown): value is DataType =>
  typeof value === 'string' && (value in numericCtors || value === 'INT64' || value === 'BYTES')

export function elementCount(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** Copies plain numbers into the typed array for `datatype`; throws BAD_INPUT on a non-number. */
export function toTypedArray(values: readonly unknown[], datatype: DataType, name: string): TensorData {
  if (datatype === 'BYTES') {
    return values.map((v) => {
      if (typeof v !== 'string') throw badInput(`input "${name}": BYTES elements must be strings`)
      return v
    })
  }
  const integer = integerTypes.has(datatype)
  const check = (v: unknown, i: number): number => {
    const n = typeof v === 'boolean' && datatype === 'BOOL' ? Number(v) : v
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw badInput(`input "${name}": element ${i} is ${JSON.stringify(v)}, not a finite number`)
    }
    if (integer && !Number.isInteger(n)) throw badInput(`input "${name}": element ${i} is ${n}, not an integer (${datatype})`)
    return n
  }
  if (datatype === 'INT64') {
    const out = new BigInt64Array(values.length)
    for (let i = 0; i < values.length; i++) out[i] = BigInt(check(values[i], i))
    return out
  }
  const out = new numericCtors[datatype](values.length)
  for (let i = 0; i < values.length; i++) out[i] = check(values[i], i)
  return out
}

/** Flattens a nested JSON array, checking it is rectangular; returns its shape. */
export function flattenNested(value: unknown, name: string): { shape: number[]; flat: unknown[] } {
  const shape: number[] = []
  let probe: unknown = value
  while (Array.isArray(probe)) {
    shape.push(probe.length)
    probe = probe[0]
  }
  if (shape.length === 0) throw badInput(`input "${name}": expected a nested array or {shape, datatype, data}`)
  const flat: unknown[] = []
  const walk = (node: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(node)) throw badInput(`input "${name}": ragged array (too deep at depth ${depth})`)
      flat.push(node)
      return
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw badInput(`input "${name}": ragged array (expected ${shape[depth]} elements at depth ${depth})`)
    }
    for (const child of node) walk(child, depth + 1)
  }
  walk(value, 0)
  return { shape, flat }
}

/** Builds a tensor for `spec` from either JSON form the APIs accept. */
export function tensorFromJson(value: unknown, spec: TensorSpec): Tensor {
  if (Array.isArray(value)) {
    const { shape, flat } = flattenNested(value, spec.name)
    return checkShape({ datatype: spec.datatype, shape, data: toTypedArray(flat, spec.datatype, spec.name) }, spec)
  }
  if (value !== null && typeof value === 'object') {
    const { shape, datatype, data } = value as { shape?: unknown; datatype?: unknown; data?: unknown }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw badInput(`input "${spec.name}": shape must be an array of non-negative integers`)
    }
    if (datatype !== undefined && datatype !== spec.datatype) {
      throw badInput(`input "${spec.name}": datatype ${String(datatype)} given, model declares ${spec.datatype}`)
    }
    if (!Array.isArray(data)) throw badInput(`input "${spec.name}": data must be an array`)
    // OIP allows data nested or flat; the element count must match the shape either way.
    const flat = data.some(Array.isArray) ? flattenNested(data, spec.name).flat : data
    if (flat.length !== elementCount(shape as number[])) {
      throw badInput(`input "${spec.name}": ${flat.length} elements do not fill shape [${shape.join(', ')}]`)
    }
    return checkShape({ datatype: spec.datatype, shape: shape as number[], data: toTypedArray(flat, spec.datatype, spec.name) }, spec)
  }
  throw badInput(`input "${spec.name}": expected a nested array or {shape, datatype, data}`)
}

/** Throws BAD_INPUT unless the tensor's dtype and shape fit the spec (-1 matches any size). */
export function checkShape(tensor: Tensor, spec: TensorSpec): Tensor {
  if (tensor.datatype !== spec.datatype) {
    throw badInput(`input "${spec.name}": datatype ${tensor.datatype} given, model declares ${spec.datatype}`)
  }
  const ok = tensor.shape.length === spec.shape.length && spec.shape.every((d, i) => d < 0 || d === tensor.shape[i])
  if (!ok) {
    throw badInput(`input "${spec.name}": shape [${tensor.shape.join(', ')}] does not match declared [${spec.shape.join(', ')}]`)
  }
  if (tensor.data.length !== elementCount(tensor.shape)) {
    throw badInput(`input "${spec.name}": ${tensor.data.length} elements do not fill shape [${tensor.shape.join(', ')}]`)
  }
  return tensor
}

/** Plain-number view of a tensor's data (BigInt → Number), for JSON. */
export function plainData(tensor: Tensor): (number | string)[] {
  const { data } = tensor
  if (Array.isArray(data)) return data
  if (data instanceof BigInt64Array) return Array.from(data, Number)
  return Array.from(data as ArrayLike<number>)
}

/** Nested JSON array in the tensor's shape (what the native REST API returns). */
export function toNested(tensor: Tensor): unknown {
  const flat = plainData(tensor)
  const { shape } = tensor
  if (shape.length === 0) return flat[0]
  let offset = 0
  const build = (depth: number): unknown[] => {
    const size = shape[depth] ?? 0
    const out = new Array<unknown>(size)
    for (let i = 0; i < size; i++) out[i] = depth === shape.length - 1 ? flat[offset++] : build(depth + 1)
    return out
  }
  return build(0)
}

/** Reads element `i` of a numeric tensor as a number. */
export function numberAt(tensor: Tensor, i: number): number {
  const v = tensor.data[i]
  return typeof v === 'bigint' ? Number(v) : Number(v)
}

function badInput(message: string): GatewayError {
  return new GatewayError('BAD_INPUT', message)
}
