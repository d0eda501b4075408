// Raw tensor bytes: little-endian, row-major, each BYTES element prefixed by its length as
// a uint32 (the OIP binary extension and raw_*_contents, TF's tensor_content, the
// specserve wire). The host is little-endian, so numeric tensors are written as views.
import { isUtf8 } from 'node:buffer'
import { DATATYPES, type DataType, type TensorData } from './datatypes.ts'
import { notText } from './elements.ts'
import { elementCount, fail, formatShape, type Failure, type Tensor } from './tensor.ts'

/**
 * Elements of `datatype` from raw bytes, copied into an aligned array of their own (wire
 * buffers start anywhere and are reused by the transport). `shape`, when known, is what the
 * bytes must fill exactly.
 */
export function fromRaw(bytes: Uint8Array, datatype: DataType, shape: readonly number[] | undefined, failure: Failure, name: string): TensorData {
  const row = DATATYPES[datatype]
  const count = shape === undefined ? undefined : elementCount(shape)
  if (row.array === null) return decodeLengthPrefixed(bytes, count, failure, name)
  if (count !== undefined && bytes.byteLength !== count * row.width) {
    fail(failure, name, `${bytes.byteLength} raw bytes, shape ${formatShape(shape!)} of ${datatype} needs ${count * row.width}`)
  }
  if (bytes.byteLength % row.width !== 0) fail(failure, name, `${bytes.byteLength} raw bytes are not a whole number of ${datatype} elements`)
  const out = new row.array(bytes.byteLength / row.width)
  new Uint8Array(out.buffer).set(bytes)
  if (datatype === 'BOOL') {
    const at = (out as Uint8Array).findIndex((b) => b > 1)
    if (at >= 0) fail(failure, name, `element ${at} is ${out[at]}, not a boolean (0 or 1)`)
  }
  return out
}

/** The tensor's raw bytes (a view of numeric data, no copy). */
export function toRaw(tensor: Tensor): Buffer {
  const { data } = tensor
  if (Array.isArray(data)) return encodeLengthPrefixed(data)
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
}

function decodeLengthPrefixed(bytes: Uint8Array, count: number | undefined, failure: Failure, name: string): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: string[] = []
  let offset = 0
  while (offset < buf.length && (count === undefined || out.length < count)) {
    if (offset + 4 > buf.length) fail(failure, name, `raw BYTES data ends inside the length of element ${out.length}`)
    const len = buf.readUInt32LE(offset)
    offset += 4
    if (offset + len > buf.length) fail(failure, name, `raw BYTES element ${out.length} runs past the data`)
    if (!isUtf8(buf.subarray(offset, offset + len))) notText(failure, name, out.length)
    out.push(buf.toString('utf8', offset, offset + len))
    offset += len
  }
  if (count !== undefined && out.length < count) fail(failure, name, `raw BYTES data holds ${out.length} elements, ${count} needed`)
  if (offset !== buf.length) fail(failure, name, `${buf.length - offset} raw bytes left over after ${out.length} BYTES elements`)
  return out
}

function encodeLengthPrefixed(strings: readonly string[]): Buffer {
  const parts = strings.map((s) => Buffer.from(s, 'utf8'))
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0))
  let offset = 0
  for (const p of parts) {
    offset = out.writeUInt32LE(p.length, offset)
    offset += p.copy(out, offset)
  }
  return out
}
