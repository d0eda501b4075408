// Tensor <-> Open Inference Protocol V2 encodings, shared by the REST (JSON + binary
// extension) and gRPC (typed contents + raw contents) frontends. Raw layouts are the
// spec's: little-endian, row-major; BYTES elements each prefixed by a uint32 LE length.
import { GatewayError } from '../../errors.ts'
import { checkShape, elementCount, plainData, tensorFromJson } from '../../tensor.ts'
import type { DataType, Tensor, TensorData, TensorSpec } from '../../types.ts'

/** Bytes per element of each fixed-size datatype (BYTES is variable). */
const elementSize: Readonly<Record<Exclude<DataType, 'BYTES'>, number>> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP32: 4,
  FP64: 8,
}

const typedCtors = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP32: Float32Array,
  FP64: Float64Array,
} as const

export const badInput = (message: string): GatewayError => new GatewayError('BAD_INPUT', message)

/** Checks a wire tensor's declared datatype and shape against the ensemble's spec. */
export function checkHeader(spec: TensorSpec, datatype: unknown, shape: readonly unknown[]): readonly number[] {
  if (datatype !== spec.datatype) {
    throw badInput(`input "${spec.name}": datatype ${String(datatype || '(none)')} given, model declares ${spec.datatype}`)
  }
  const dims = shape.map(Number)
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw badInput(`input "${spec.name}": shape must be non-negative integers, got [${shape.join(', ')}]`)
  }
  return dims
}

/** A tensor in the spec's JSON form: `{name, shape, datatype, data}` (data flat or nested). */
export function tensorFromOipJson(value: { shape?: unknown; datatype?: unknown; data?: unknown }, spec: TensorSpec): Tensor {
  if (value.datatype !== spec.datatype) {
    throw badInput(`input "${spec.name}": datatype ${String(value.datatype ?? '(none)')} given, model declares ${spec.datatype}`)
  }
  return tensorFromJson(value, spec)
}

/** A tensor from raw little-endian bytes (binary extension, raw_input_contents). */
export function tensorFromRaw(bytes: Uint8Array, spec: TensorSpec, shape: readonly number[]): Tensor {
  const count = elementCount(shape)
  const datatype = spec.datatype
  let data: TensorData
  if (datatype === 'BYTES') {
    data = decodeBytesElements(bytes, count, spec.name)
  } else {
    const size = elementSize[datatype]
    if (bytes.byteLength !== count * size) {
      throw badInput(`input "${spec.name}": ${bytes.byteLength} raw bytes, shape [${shape.join(', ')}] of ${datatype} needs ${count * size}`)
    }
    // Copy: the wire buffer is rarely aligned for a typed-array view, and it is reused by the transport.
    const out = new typedCtors[datatype](count)
    new Uint8Array(out.buffer).set(bytes)
    data = out
  }
  return checkShape({ datatype, shape, data }, spec)
}

/** Raw little-endian bytes of a tensor (zero-copy view for numeric types). */
export function tensorToRaw(tensor: Tensor): Buffer {
  const { data } = tensor
  if (Array.isArray(data)) return encodeBytesElements(data)
  const view = data as Exclude<TensorData, string[]>
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

/** The spec's JSON output tensor (flat data, row-major). */
export function tensorToOipJson(name: string, tensor: Tensor): { name: string; datatype: string; shape: readonly number[]; data: (number | string)[] } {
  return { name, datatype: tensor.datatype, shape: tensor.shape, data: plainData(tensor) }
}

/** gRPC typed contents (field names as in inference.InferTensorContents). */
export interface OipContents {
  bool_contents?: boolean[]
  int_contents?: number[]
  int64_contents?: (string | number)[]
  uint_contents?: number[]
  uint64_contents?: (string | number)[]
  fp32_contents?: number[]
  fp64_contents?: number[]
  bytes_contents?: Uint8Array[]
}

/** Builds a tensor from typed contents; the field used is the one the datatype names. */
export function tensorFromContents(contents: OipContents, spec: TensorSpec, shape: readonly number[]): Tensor {
  const datatype = spec.datatype
  const values = contentsField(contents, datatype)
  const count = elementCount(shape)
  if (values.length !== count) {
    throw badInput(`input "${spec.name}": ${values.length} elements do not fill shape [${shape.join(', ')}]`)
  }
  let data: TensorData
  if (datatype === 'BYTES') {
    data = (values as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'))
  } else if (datatype === 'INT64') {
    const out = new BigInt64Array(count)
    for (let i = 0; i < count; i++) out[i] = BigInt(values[i] as string | number)
    data = out
  } else if (datatype === 'BOOL') {
    data = Uint8Array.from(values as boolean[], Number)
  } else {
    data = typedCtors[datatype].from(values as number[])
  }
  return checkShape({ datatype, shape, data }, spec)
}

/** Typed contents for a tensor; INT64 elements as decimal strings (exact beyond 2^53). */
export function tensorToContents(tensor: Tensor): OipContents {
  const { data } = tensor
  switch (tensor.datatype) {
    case 'BYTES':
      return { bytes_contents: (data as string[]).map((s) => Buffer.from(s, 'utf8')) }
    case 'INT64':
      return { int64_contents: Array.from(data as BigInt64Array, String) }
    case 'BOOL':
      return { bool_contents: Array.from(data as Uint8Array, Boolean) }
    case 'UINT8':
      return { uint_contents: Array.from(data as Uint8Array) }
    case 'INT8':
    case 'INT16':
    case 'INT32':
      return { int_contents: Array.from(data as Int32Array) }
    case 'FP32':
      return { fp32_contents: Array.from(data as Float32Array) }
    case 'FP64':
      return { fp64_contents: Array.from(data as Float64Array) }
  }
}

function contentsField(contents: OipContents, datatype: DataType): readonly unknown[] {
  switch (datatype) {
    case 'BYTES':
      return contents.bytes_contents ?? []
    case 'INT64':
      return contents.int64_contents ?? []
    case 'BOOL':
      return contents.bool_contents ?? []
    case 'UINT8':
      return contents.uint_contents ?? []
    case 'INT8':
    case 'INT16':
    case 'INT32':
      return contents.int_contents ?? []
    case 'FP32':
      return contents.fp32_contents ?? []
    case 'FP64':
      return contents.fp64_contents ?? []
  }
}

function decodeBytesElements(bytes: Uint8Array, count: number, name: string): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Array<string>(count)
  let offset = 0
  for (let i = 0; i < count; i++) {
    if (offset + 4 > buf.length) throw badInput(`input "${name}": raw BYTES data ends before element ${i}`)
    const len = buf.readUInt32LE(offset)
    offset += 4
    if (offset + len > buf.length) throw badInput(`input "${name}": raw BYTES element ${i} runs past the data`)
    out[i] = buf.toString('utf8', offset, offset + len)
    offset += len
  }
  if (offset !== buf.length) throw badInput(`input "${name}": ${buf.length - offset} raw bytes left over after ${count} BYTES elements`)
  return out
}

function encodeBytesElements(strings: readonly string[]): Buffer {
  const parts = strings.map((s) => Buffer.from(s, 'utf8'))
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0))
  let offset = 0
  for (const p of parts) {
    offset = out.writeUInt32LE(p.length, offset)
    offset += p.copy(out, offset)
  }
  return out
}
