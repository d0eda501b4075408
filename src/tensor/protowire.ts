// The protobuf wire format, just what our hand-written message codecs need: a reader over
// the bytes grpc-js hands a deserializer (fields, varints, fixed-width numbers, packed
// runs as typed-array views where the bytes allow), and (protowriter.ts) a writer into one
// buffer sized in advance. Malformed bytes throw ProtoError, never read past the end, and
// unknown fields are skipped, as protobuf requires.

export class ProtoError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProtoError'
  }
}

export const WireType = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
// Fatal: bytes that are not UTF-8 throw, never come back with U+FFFD in their place.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** Nesting the reader follows when skipping groups (protobuf's own parsers stop at 100): deeper is malformed, not a stack overflow. */
const MAX_GROUP_DEPTH = 100

export class ProtoReader {
  readonly buf: Uint8Array
  pos: number
  /** Where reading stops: the message's end, or a packed run's while it is read. */
  end: number
  private view: DataView | null = null

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  get done(): boolean {
    return this.pos >= this.end
  }

  /** The next field's tag: field number × 8 + wire type. */
  tag(): number {
    const tag = this.uint32()
    if (tag >>> 3 === 0) throw new ProtoError(`field number 0 at byte ${this.pos}`)
    return tag
  }

  /** A varint as an unsigned 32-bit number (higher bits dropped, as protobuf does for 32-bit fields). */
  uint32(): number {
    let value = 0
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new ProtoError('truncated varint')
      const b = this.buf[this.pos++] as number
      if (shift < 32) value |= (b & 0x7f) << shift
      if (b < 0x80) return value >>> 0
    }
    throw new ProtoError('varint longer than 10 bytes')
  }

  /** A varint as a signed 32-bit number (int32: negatives come as 10-byte varints). */
  int32(): number {
    return this.uint32() | 0
  }

  /** A varint as an unsigned 64-bit bigint. */
  uint64(): bigint {
    let lo = 0
    let hi = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError('truncated varint')
      const b = this.buf[this.pos++] as number
      if (i < 4) lo |= (b & 0x7f) << (i * 7)
      else if (i === 4) {
        lo |= (b & 0x0f) << 28
        hi |= (b & 0x7f) >> 4
      } else hi |= (b & 0x7f) << (i * 7 - 32)
      if (b < 0x80) return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)
    }
    throw new ProtoError('varint longer than 10 bytes')
  }

  int64(): bigint {
    return BigInt.asIntN(64, this.uint64())
  }

  bool(): boolean {
    return this.uint64() !== 0n
  }

  double(): number {
    return this.dataView().getFloat64(this.advance(8), true)
  }

  float(): number {
    return this.dataView().getFloat32(this.advance(4), true)
  }

  /** A length-delimited field's bounds: [start, end). */
  span(): [number, number] {
    const length = this.uint32()
    const start = this.pos
    if (length > this.end - start) throw new ProtoError(`length ${length} runs past the end of the message`)
    this.pos = start + length
    return [start, this.pos]
  }

  /**
   * A proto3 `string` field (an id, a name, a string element): bytes that are not UTF-8 make
   * the message malformed (proto3 strings are UTF-8), as REST refuses a body that is not
   * UTF-8; they are never read with U+FFFD in their place. `field` names it in the error.
   */
  string(field: string): string {
    const [start, end] = this.span()
    try {
      return strictUtf8.decode(this.buf.subarray(start, end))
    } catch {
      throw new ProtoError(`${field} is not valid UTF-8 (at byte ${start}): proto3 strings are UTF-8`)
    }
  }

  /** Skips a field of the given wire type (unknown fields, groups nested up to MAX_GROUP_DEPTH included). */
  skip(wireType: number, field = 0, depth = 0): void {
    switch (wireType) {
      case WireType.VARINT:
        this.uint64()
        return
      case WireType.I64:
        this.advance(8)
        return
      case WireType.LEN:
        this.span()
        return
      case WireType.I32:
        this.advance(4)
        return
      case WireType.SGROUP:
        if (depth >= MAX_GROUP_DEPTH) throw new ProtoError(`groups nested deeper than ${MAX_GROUP_DEPTH}`)
        for (;;) {
          const tag = this.tag()
          if ((tag & 7) === WireType.EGROUP) {
            if (tag >>> 3 !== field) throw new ProtoError(`group ${field} ended by field ${tag >>> 3}`)
            return
          }
          this.skip(tag & 7, tag >>> 3, depth + 1)
        }
      default:
        throw new ProtoError(`wire type ${wireType} at byte ${this.pos}`)
    }
  }

  /**
   * A packed run of fixed-width little-endian numbers as a typed array: a view of the
   * message's bytes when aligned, else a copy of them (one memcpy).
   */
  fixedRun<T extends Float32Array | Float64Array>(array: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number }): T {
    const [start, end] = this.span()
    const width = array.BYTES_PER_ELEMENT
    if ((end - start) % width !== 0) throw new ProtoError(`packed run of ${end - start} bytes is not a whole number of ${width}-byte elements`)
    const at = this.buf.byteOffset + start
    if (!LITTLE_ENDIAN) return littleEndianCopy(this.buf.subarray(start, end), array)
    if (at % width === 0) return new array(this.buf.buffer as ArrayBuffer, at, (end - start) / width)
    const copy = new Uint8Array(end - start)
    copy.set(this.buf.subarray(start, end))
    return new array(copy.buffer, 0, (end - start) / width)
  }

  private advance(n: number): number {
    const at = this.pos
    if (n > this.end - at) throw new ProtoError('truncated fixed-width field')
    this.pos = at + n
    return at
  }

  private dataView(): DataView {
    return (this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength))
  }
}

function littleEndianCopy<T extends Float32Array | Float64Array>(bytes: Uint8Array, array: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number }): T {
  const width = array.BYTES_PER_ELEMENT
  const n = bytes.length / width
  const out = new array(new ArrayBuffer(bytes.length), 0, n)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < n; i++) out[i] = width === 4 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true)
  return out
}
