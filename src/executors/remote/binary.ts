// Little-endian tensor bytes (OIP raw_*_contents, TF tensor_content) to and from elements.
import type { Tensor } from '../../types.ts'
import { badResponse } from './errors.ts'

const WIDTH: Readonly<Record<string, number>> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8,
}

/** Elements of `bytes` read as `datatype` (a V2 name); UPSTREAM_BAD_RESPONSE when they don't fit. */
export function decodeLittleEndian(bytes: Uint8Array, datatype: string, what: string): ArrayLike<unknown> {
  if (datatype === 'BYTES') return decodeLengthPrefixed(bytes, what)
  const width = WIDTH[datatype]
  if (width === undefined || datatype === 'FP16') throw badResponse(`${what}: datatype ${datatype} is not supported`)
  if (bytes.byteLength % width !== 0) throw badResponse(`${what}: ${bytes.byteLength} bytes is not a whole number of ${datatype}`)
  // Copy into a fresh, aligned buffer: wire buffers can start at any offset.
  const buf = new Uint8Array(bytes).buffer
  switch (datatype) {
    case 'FP32':
      return new Float32Array(buf)
    case 'FP64':
      return new Float64Array(buf)
    case 'INT8':
      return new Int8Array(buf)
    case 'INT16':
      return new Int16Array(buf)
    case 'UINT16':
      return new Uint16Array(buf)
    case 'INT32':
      return new Int32Array(buf)
    case 'UINT32':
      return new Uint32Array(buf)
    case 'INT64':
      return new BigInt64Array(buf)
    case 'UINT64':
      return new BigUint64Array(buf)
    default:
      return new Uint8Array(buf) // UINT8, BOOL
  }
}

function decodeLengthPrefixed(bytes: Uint8Array, what: string): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: string[] = []
  let at = 0
  while (at < bytes.byteLength) {
    if (at + 4 > bytes.byteLength) throw badResponse(`${what}: truncated BYTES element`)
    const len = view.getUint32(at, true)
    at += 4
    if (at + len > bytes.byteLength) throw badResponse(`${what}: truncated BYTES element`)
    out.push(Buffer.from(bytes.buffer, bytes.byteOffset + at, len).toString('utf8'))
    at += len
  }
  return out
}

/** A numeric tensor's elements as little-endian bytes (a view, no copy: the host is little-endian). */
export function encodeLittleEndian(tensor: Tensor): Buffer {
  const { data } = tensor
  if (Array.isArray(data)) {
    const parts: Buffer[] = []
    for (const s of data) {
      const b = Buffer.from(s, 'utf8')
      const len = Buffer.alloc(4)
      len.writeUInt32LE(b.byteLength)
      parts.push(len, b)
    }
    return Buffer.concat(parts)
  }
  const typed = data as Exclude<Tensor['data'], string[]>
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength)
}
