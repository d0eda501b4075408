// Elements in and out of typed arrays: the one decoder every wire form ends in, and the
// JSON-safe element encoding. The rules, whoever sends the elements:
// - integers must be integers inside their type's range (INT8 300 is refused, never 44);
// - 64-bit integers come as numbers up to ±(2^53 - 1) or as decimal strings (exact);
// - floats are numbers, or the strings "NaN", "Infinity", "-Infinity" (JSON has no literal for
//   them), exactly (api.md); an upstream's answer may also say "inf" and "-inf";
// - BOOL takes true/false or 0/1 (no other type takes booleans); BYTES takes strings, or bytes
//   that are valid UTF-8 (a BYTES tensor is held as strings, as ONNX string tensors are: bytes
//   that are not text would be replaced by U+FFFD, so they are refused, never altered).
// JSON output follows the same rules, so every tensor survives a round trip exactly.
import { isUtf8 } from 'node:buffer'
import { DATATYPES, type DataType, type TensorData } from './datatypes.ts'
import { describe, fail, type Failure, type Tensor } from './tensor.ts'

/** The strings a float element may be: in a request, these and no others ("nan", "inf", "1e400" are not elements). */
const FLOAT_WORDS: Readonly<Record<string, number>> = { NaN: Number.NaN, Infinity: Infinity, '-Infinity': -Infinity }
/**
 * In an upstream's answer, also "inf" and "-inf", on purpose: we do not choose what a model
 * server writes, some write Python's str() of a float, and the value is not in doubt. A
 * client is held to the documented three.
 */
const UPSTREAM_FLOAT_WORDS: Readonly<Record<string, number>> = { ...FLOAT_WORDS, inf: Infinity, '-inf': -Infinity }
const DECIMAL = /^-?\d{1,20}$/
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/**
 * `values` (numbers, bigints, booleans, strings, typed-array elements) as `datatype`'s
 * typed array, each checked against the rules above; `failure` says whose fault a bad
 * element is. A typed array of the target type is returned as is.
 */
export function decodeElements(values: ArrayLike<unknown>, datatype: DataType, failure: Failure, name: string): TensorData {
  const row = DATATYPES[datatype]
  const n = values.length
  // A typed array of the target type holds only valid elements (BOOL's Uint8Array excepted: it may hold 2).
  if (row.array !== null && values instanceof row.array && datatype !== 'BOOL') return values
  const bad = (i: number, why: string): never => fail(failure, name, `element ${i} is ${describe(values[i])}, ${why}`)
  switch (row.kind) {
    case 'bytes': {
      const out = new Array<string>(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        // A lone surrogate (JSON's "\ud800") has no UTF-8: it would reach the model as U+FFFD.
        if (typeof v === 'string') out[i] = v.isWellFormed() ? v : fail(failure, name, `BYTES element ${i} holds an unpaired surrogate: not text UTF-8 can carry`)
        else if (v instanceof Uint8Array) out[i] = isUtf8(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8') : notText(failure, name, i)
        else bad(i, 'not a string')
      }
      return out
    }
    case 'float': {
      const out = new row.array!(n) as Float32Array
      const words = failure.upstream === true ? UPSTREAM_FLOAT_WORDS : FLOAT_WORDS
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v === 'number') out[i] = v
        else if (typeof v === 'string' && Object.hasOwn(words, v)) out[i] = words[v] as number
        else if (typeof v === 'bigint') out[i] = Number(v)
        else bad(i, 'not a number')
      }
      return out
    }
    case 'bigint': {
      const out = new row.array!(n) as BigInt64Array
      const [min, max] = row.range as readonly [bigint, bigint]
      for (let i = 0; i < n; i++) {
        const v = values[i]
        let b: bigint
        if (typeof v === 'bigint') b = v
        else if (typeof v === 'number') {
          if (!Number.isSafeInteger(v)) bad(i, Number.isInteger(v) ? 'beyond ±2^53: send 64-bit integers this large as decimal strings' : `not an integer (${datatype})`)
          b = BigInt(v)
        } else if (typeof v === 'string' && DECIMAL.test(v)) b = BigInt(v)
        else b = bad(i, `not an integer (${datatype})`)
        if (b < min || b > max) bad(i, `outside ${datatype} [${min}, ${max}]`)
        out[i] = b
      }
      return out
    }
    default: {
      // 'int' and 'bool'
      const out = new row.array!(n) as Int32Array
      const [min, max] = row.range as readonly [number, number]
      for (let i = 0; i < n; i++) {
        const v = values[i]
        const x = typeof v === 'number' ? v : typeof v === 'boolean' && row.kind === 'bool' ? +v : typeof v === 'bigint' ? bigToNumber(v) : Number.NaN
        if (Number.isNaN(x) || (Number.isFinite(x) && !Number.isInteger(x))) bad(i, row.kind === 'bool' ? 'not a boolean (true/false or 0/1)' : `not an integer (${datatype})`)
        if (x < min || x > max) bad(i, `outside ${datatype} [${min}, ${max}]`)
        out[i] = x
      }
      return out
    }
  }
}

/** Refuses BYTES element `i`, bytes that are not UTF-8 (never echoed: they are not text). */
export function notText(failure: Failure, name: string, i: number): never {
  return fail(failure, name, `BYTES element ${i} is not valid UTF-8: BYTES elements must be UTF-8 text here`)
}

/** A bigint as a number: exact within ±(2^53 - 1), else ±Infinity (out of every 32-bit range). */
const bigToNumber = (v: bigint): number => (v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v > 0n ? Infinity : -Infinity)

export type JsonElement = number | string

/** One element as JSON can carry it exactly (see the rules above). */
export function jsonElement(v: number | bigint | string): JsonElement {
  if (typeof v === 'number') return Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'
  if (typeof v === 'bigint') return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : `${v}`
  return v
}

/** The tensor's elements, flat and row-major, as JSON can carry them exactly. */
export function jsonElements(tensor: Tensor): JsonElement[] {
  const { data } = tensor
  if (Array.isArray(data)) return data
  const n = data.length
  const out = new Array<JsonElement>(n)
  for (let i = 0; i < n; i++) out[i] = jsonElement(data[i] as number | bigint)
  return out
}

/** The tensor's elements as protobuf fields carry them: BOOL as booleans, 64-bit integers as decimal strings (exact), strings as they are. */
export function protoElements(tensor: Tensor): unknown[] {
  const { data } = tensor
  if (Array.isArray(data)) return data
  if (tensor.datatype === 'BOOL') return Array.from(data as Uint8Array, Boolean)
  if (DATATYPES[tensor.datatype].kind === 'bigint') return Array.from(data as BigInt64Array, String)
  return Array.from(data as Float32Array)
}
