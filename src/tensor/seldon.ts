// Seldon Core v1's SeldonMessage data: `ndarray` (nested lists; over gRPC a
// google.protobuf.ListValue), `tensor` ({shape, values}, doubles) and `tftensor` (a TF
// TensorProto). One tensor each way.
import { jsonElements } from './elements.ts'
import { flattenNested, toNested } from './json.ts'
import { fromTensorProto, type TensorProto } from './tf.ts'
import { fail, readShape, type Failure, type Tensor, type WireTensor } from './tensor.ts'

export type SeldonFormat = 'ndarray' | 'tensor'

/**
 * google.protobuf.Value as proto-loader sees it. protobufjs defines the well-known types
 * itself, with camelCase member names, whatever `keepCase` says for our own messages.
 */
export interface PbValue {
  numberValue?: number | string
  stringValue?: string
  boolValue?: boolean
  listValue?: { values?: PbValue[] } | null
  nullValue?: unknown
  kind?: string
}

/** `data` of a SeldonMessage carrying `tensor`. */
export function toSeldonData(tensor: Tensor, format: SeldonFormat, grpc: boolean, names: readonly string[]): object {
  if (format === 'tensor') return { names, tensor: { shape: tensor.shape, values: grpc ? Array.from(tensor.data as ArrayLike<unknown>, Number) : jsonElements(tensor) } }
  const nested = toNested(tensor)
  return { names, ndarray: grpc ? toListValue(nested as unknown[]) : nested }
}

/** The tensor of an answer's `data`, unchecked against the declaration (`maxBytes`: see fromTensorProto). */
export function fromSeldonData(data: Record<string, unknown> | undefined, grpc: boolean, failure: Failure, name: string, maxBytes: number): WireTensor {
  if (data?.tensor) {
    const t = data.tensor as { shape?: unknown; values?: unknown }
    if (!Array.isArray(t.shape) || !Array.isArray(t.values)) return fail(failure, name, 'data.tensor lacks shape or values')
    return { shape: readShape(t.shape, failure, name), data: t.values }
  }
  if (data?.ndarray !== undefined && data.ndarray !== null) {
    const nd = grpc ? fromListValue(data.ndarray, failure, name) : data.ndarray
    if (!Array.isArray(nd)) return fail(failure, name, 'data.ndarray is not an array')
    const { shape, flat } = flattenNested(nd, failure, name)
    return { shape, data: flat }
  }
  if (data?.tftensor) return fromTensorProto(data.tftensor as TensorProto, failure, name, maxBytes)
  return fail(failure, name, 'no data.ndarray, data.tensor or data.tftensor in the answer')
}

export function toValue(v: unknown): PbValue {
  if (typeof v === 'number') return { numberValue: v }
  if (typeof v === 'string') return { stringValue: v }
  if (typeof v === 'boolean') return { boolValue: v }
  if (Array.isArray(v)) return { listValue: toListValue(v) }
  return { nullValue: 'NULL_VALUE' }
}

function toListValue(list: readonly unknown[]): { values: PbValue[] } {
  return { values: list.map(toValue) }
}

function fromValue(v: PbValue, failure: Failure, name: string): unknown {
  switch (v.kind) {
    case 'numberValue':
      return v.numberValue
    case 'stringValue':
      return v.stringValue
    case 'boolValue':
      return v.boolValue
    case 'listValue':
      return fromListValue(v.listValue, failure, name)
    default:
      return null
  }
}

function fromListValue(list: unknown, failure: Failure, name: string): unknown[] {
  const values = (list as { values?: PbValue[] } | null)?.values
  if (!Array.isArray(values)) return fail(failure, name, 'data.ndarray is not a list')
  return values.map((v) => fromValue(v, failure, name))
}
