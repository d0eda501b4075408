// specserve.v1.Tensor straight from and to protobuf bytes (the hot gRPC path), without
// proto-loader's intermediate objects: a packed fp32_data/fp64_data run becomes a typed
// array over the message's bytes, and an output tensor's elements are written from its
// typed array in one pass. Decoding yields the same NativeTensorMsg shape proto-loader
// does, so fromNativeTensor (./specserve.ts) checks it against the declaration as before.
import { DATATYPES, type NativeField } from './datatypes.ts'
import type { NativeTensorMsg } from './specserve.ts'
import type { Tensor } from './tensor.ts'
import { ProtoError, ProtoReader, WireType } from './protowire.ts'
import { int32Size, lenFieldSize, stringSize, uint64Size, varintSize, type ProtoWriter } from './protowriter.ts'

/** specserve.v1.Tensor's element fields by number, with how each element is read. */
/** How a repeated element field is read: its protobuf type (`string` and `bytes` differ only in what the reader returns). */
export type WireElementKind = 'float' | 'double' | 'int32' | 'int64' | 'bool' | 'string' | 'bytes' | 'uint32' | 'uint64'
const ELEMENT_FIELDS: readonly (readonly [NativeField, WireElementKind])[] = [
  ['fp32_data', 'float'], // 3
  ['fp64_data', 'double'], // 4
  ['int_data', 'int32'], // 5
  ['int64_data', 'int64'], // 6
  ['bool_data', 'bool'], // 7
  ['string_data', 'string'], // 8
  ['uint_data', 'uint32'], // 9
  ['uint64_data', 'uint64'], // 10
]
const FIELD_NUMBER: Readonly<Record<NativeField, number>> = Object.fromEntries(ELEMENT_FIELDS.map(([name], i) => [name, i + 3])) as Record<NativeField, number>

type Mutable = { datatype: string; shape: (number | string)[] } & Partial<Record<NativeField, unknown[] | Float32Array | Float64Array>>

/** Element fields being read: a field's values so far (a typed-array view while it is one packed float run). */
export type ElementsRead = Record<string, unknown[] | Float32Array | Float64Array | undefined>

/** Reads a Tensor message in [start, end) of the reader's bytes. */
export function readNativeTensor(r: ProtoReader, start: number, end: number): NativeTensorMsg {
  const sub = new ProtoReader(r.buf, start, end)
  const out: Mutable = { datatype: '', shape: [] }
  const elements: ElementsRead = {}
  while (!sub.done) {
    const tag = sub.tag()
    const field = tag >>> 3
    const wireType = tag & 7
    if (field === 1) {
      expectWire(wireType, WireType.LEN, 'datatype')
      out.datatype = sub.string("an input's datatype")
    } else if (field === 2) readShapeField(sub, wireType, out.shape)
    else if (field >= 3 && field <= 10) {
      const [name, kind] = ELEMENT_FIELDS[field - 3]!
      readElementField(sub, elements, name, kind, wireType)
    } else sub.skip(wireType, field)
  }
  return Object.assign(out, elements)
}

/** A repeated int64 shape field: dimensions as numbers, or decimal strings beyond 2^53 (readShape refuses those). */
export function readShapeField(r: ProtoReader, wireType: number, into: (number | string)[]): void {
  readRepeated(r, wireType, WireType.VARINT, () => shapeDim(r.int64()), into)
}

const shapeDim = (v: bigint): number | string => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : `${v}`)

function expectWire(got: number, want: number, name: string): void {
  if (got !== want) throw new ProtoError(`${name} has wire type ${got}, expected ${want}`)
}

/** A repeated scalar, packed (one LEN run) or not (one element per tag): protobuf parsers must take both. */
function readRepeated<T>(r: ProtoReader, wireType: number, elementWire: number, read: () => T, into: T[]): void {
  if (wireType === elementWire) {
    into.push(read())
    return
  }
  expectWire(wireType, WireType.LEN, 'a repeated field')
  const [start, end] = r.span()
  // Read the run in place, bounded by its end, so an element cannot run past it.
  const outer = r.end
  r.pos = start
  r.end = end
  try {
    while (r.pos < end) into.push(read())
  } finally {
    r.end = outer
  }
}

/** One occurrence of a repeated element field, merged with what earlier ones gave. */
export function readElementField(r: ProtoReader, out: ElementsRead, name: string, kind: WireElementKind, wireType: number): void {
  // The usual case: one packed run of floats or doubles, kept as a view of the bytes.
  if ((kind === 'float' || kind === 'double') && wireType === WireType.LEN && out[name] === undefined) {
    out[name] = kind === 'float' ? r.fixedRun(Float32Array) : r.fixedRun(Float64Array)
    return
  }
  const current = out[name]
  const into: unknown[] = current === undefined ? [] : Array.isArray(current) ? current : Array.from(current)
  out[name] = into
  if (kind === 'string' || kind === 'bytes') {
    expectWire(wireType, WireType.LEN, name)
    if (kind === 'string') into.push(r.string(name))
    else {
      const [start, end] = r.span()
      into.push(r.buf.subarray(start, end))
    }
    return
  }
  const [elementWire, read] = ELEMENT_READERS[kind]
  readRepeated(r, wireType, elementWire, () => read(r), into)
}

/** Each numeric element kind's wire type when not packed, and its reader. */
const ELEMENT_READERS: Readonly<Record<Exclude<WireElementKind, 'string' | 'bytes'>, readonly [number, (r: ProtoReader) => unknown]>> = {
  float: [WireType.I32, (r) => r.float()],
  double: [WireType.I64, (r) => r.double()],
  int32: [WireType.VARINT, (r) => r.int32()],
  uint32: [WireType.VARINT, (r) => r.uint32()],
  int64: [WireType.VARINT, (r) => r.int64()],
  uint64: [WireType.VARINT, (r) => r.uint64()],
  bool: [WireType.VARINT, (r) => r.bool()],
}

/** How a tensor's elements go on the wire: its field, and the packed run's body size (or the strings). */
export interface Plan {
  readonly field: number
  readonly bodySize: number
  readonly write: (w: ProtoWriter) => void
}

/** A tensor's elements as repeated field `field` (packed, or one LEN field per string); null when there are none. */
export function planElements(tensor: Tensor, field: number): Plan | null {
  const data = tensor.data
  if (data.length === 0) return null
  if (Array.isArray(data)) {
    const sizes = data.map(stringSize)
    let bodySize = 0
    for (const s of sizes) bodySize += lenFieldSize(field, s)
    return { field, bodySize, write: (w) => data.forEach((s, i) => w.stringField(field, s, sizes[i])) }
  }
  switch (tensor.datatype) {
    case 'FP32':
    case 'FP64': {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      return { field, bodySize: bytes.length, write: (w) => w.bytes(bytes) }
    }
    case 'FP16': {
      const floats = Float32Array.from(data as Float16Array)
      return { field, bodySize: floats.byteLength, write: (w) => w.bytes(new Uint8Array(floats.buffer)) }
    }
    case 'INT64':
    case 'UINT64': {
      const values = data as BigInt64Array | BigUint64Array
      let bodySize = 0
      for (const v of values) bodySize += uint64Size(v)
      return { field, bodySize, write: (w) => values.forEach((v: bigint) => w.uint64(v)) }
    }
    default: {
      // int32 / uint32 / bool varints
      const values = data as Int32Array
      let bodySize = 0
      for (const v of values) bodySize += int32Size(v)
      return { field, bodySize, write: (w) => values.forEach((v: number) => w.int32(v)) }
    }
  }
}

/** A tensor ready to write as specserve.v1.Tensor: its size, then its bytes. */
export interface TensorEncoding {
  readonly size: number
  write(w: ProtoWriter): void
}

export function encodeNativeTensor(tensor: Tensor): TensorEncoding {
  const datatypeSize = stringSize(tensor.datatype)
  let shapeBody = 0
  for (const d of tensor.shape) shapeBody += d < 0x80000000 ? varintSize(d) : uint64Size(BigInt(d))
  const elements = planElements(tensor, FIELD_NUMBER[DATATYPES[tensor.datatype].native])
  let size = lenFieldSize(1, datatypeSize)
  if (shapeBody) size += lenFieldSize(2, shapeBody)
  if (elements) size += Array.isArray(tensor.data) ? elements.bodySize : lenFieldSize(elements.field, elements.bodySize)
  return {
    size,
    write(w) {
      w.stringField(1, tensor.datatype, datatypeSize)
      if (shapeBody) {
        w.tag(2, WireType.LEN)
        w.uint32(shapeBody)
        for (const d of tensor.shape) w.uint64(BigInt(d))
      }
      if (!elements) return
      if (!Array.isArray(tensor.data)) {
        w.tag(elements.field, WireType.LEN)
        w.uint32(elements.bodySize)
      }
      elements.write(w)
    },
  }
}
