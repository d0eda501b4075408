// Writing the protobuf wire format for our hand-written codecs: each message is sized first
// (the size helpers below), then written into one buffer of exactly that size.
import { WireType } from './protowire.ts'

/** Bytes a varint of an unsigned 32-bit value takes. */
export function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5
}

/** Bytes an int32 takes (negatives are sign-extended to 10 bytes). */
export const int32Size = (value: number): number => (value < 0 ? 10 : varintSize(value))

export function uint64Size(value: bigint): number {
  let size = 1
  for (let v = BigInt.asUintN(64, value); v >= 0x80n; v >>= 7n) size++
  return size
}

/** Strings up to this length are measured and written in JS when ASCII: cheaper than a call into Buffer's native code for ids and names. */
const SHORT_STRING = 64

/** A string's UTF-8 size. Its UTF-16 length is its UTF-8 size exactly when it is all ASCII. */
export function stringSize(value: string): number {
  const n = value.length
  if (n > SHORT_STRING) return Buffer.byteLength(value)
  for (let i = 0; i < n; i++) if (value.charCodeAt(i) > 0x7f) return Buffer.byteLength(value)
  return n
}

/** Bytes of a length-delimited field: tag, length, body. */
export const lenFieldSize = (field: number, bodySize: number): number => varintSize(field << 3) + varintSize(bodySize) + bodySize

/** Writes into one buffer of a size computed beforehand (the codecs size each message first). */
export class ProtoWriter {
  readonly buf: Buffer
  pos = 0

  /**
   * `framed`: the buffer starts with gRPC's 5-byte message prefix (uncompressed, `size`
   * big-endian), so the message goes onto an HTTP/2 stream as it is, without a copy.
   */
  constructor(size: number, framed = false) {
    if (!framed) {
      this.buf = Buffer.allocUnsafe(size)
      return
    }
    this.buf = Buffer.allocUnsafe(size + 5)
    this.buf[0] = 0
    this.buf.writeUInt32BE(size, 1)
    this.pos = 5
  }

  uint32(value: number): void {
    const buf = this.buf
    while (value > 0x7f) {
      buf[this.pos++] = (value & 0x7f) | 0x80
      value >>>= 7
    }
    buf[this.pos++] = value
  }

  tag(field: number, wireType: number): void {
    this.uint32((field << 3) | wireType)
  }

  int32(value: number): void {
    if (value >= 0) this.uint32(value)
    else this.uint64(BigInt(value))
  }

  uint64(value: bigint): void {
    let v = BigInt.asUintN(64, value)
    while (v > 0x7fn) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80
      v >>= 7n
    }
    this.buf[this.pos++] = Number(v)
  }

  double(value: number): void {
    this.buf.writeDoubleLE(value, this.pos)
    this.pos += 8
  }

  /** A string field's body (its length must have been written: use stringField). */
  stringField(field: number, value: string, size = stringSize(value)): void {
    this.tag(field, WireType.LEN)
    this.uint32(size)
    if (size !== value.length || size > SHORT_STRING) {
      this.pos += this.buf.write(value, this.pos, size, 'utf8')
      return
    }
    // ASCII (its UTF-8 size is its length): one byte per character.
    const buf = this.buf
    for (let i = 0, at = this.pos; i < size; i++) buf[at + i] = value.charCodeAt(i)
    this.pos += size
  }

  bytes(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
  }

  /** The encoded message; throws if the size computed beforehand was wrong (a codec bug, never the client's). */
  finish(): Buffer {
    if (this.pos !== this.buf.length) throw new Error(`encoder sized ${this.buf.length} bytes, wrote ${this.pos}`)
    return this.buf
  }
}

// Field helpers for the codecs: proto3 leaves scalars at their default out.
// proto3 leaves out a double only when it is +0 (its bits are the default's; -0's are not).
export const doubleFieldSize = (field: number, v: number): number => (Object.is(v, 0) ? 0 : varintSize(field << 3) + 8)
export const stringFieldSize = (field: number, v: string): number => (v === '' ? 0 : lenFieldSize(field, stringSize(v)))

export function writeString(w: ProtoWriter, field: number, v: string): void {
  if (v !== '') w.stringField(field, v)
}

export function writeDouble(w: ProtoWriter, field: number, v: number): void {
  if (Object.is(v, 0)) return
  w.tag(field, WireType.I64)
  w.double(v)
}

export function writeLen(w: ProtoWriter, field: number, size: number): void {
  w.tag(field, WireType.LEN)
  w.uint32(size)
}

/**
 * A map entry's key and value into `map`, for any key: assigning "__proto__" would set the
 * object's prototype (its fields then read as entries) instead of adding an entry of that name.
 */
export function setEntry<T>(map: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true })
  else map[key] = value
}
