// The element rules every decoder applies, and whose fault a bad element is: the same
// decoder refuses a request's element as BAD_INPUT and an upstream's as UPSTREAM_BAD_RESPONSE.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import { upstreamFailure } from '../../src/executors/remote/errors.ts'
import { DATATYPES, decodeElements, fromRaw, jsonElement, toRaw, type DataType, type Failure } from '../../src/tensor/index.ts'

const integers = (Object.keys(DATATYPES) as DataType[]).filter((d) => DATATYPES[d].kind === 'int' || DATATYPES[d].kind === 'bigint')
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}
const both: readonly [Failure, string][] = [
  [inputFailure, 'BAD_INPUT'],
  [upstreamFailure, 'UPSTREAM_BAD_RESPONSE'],
]

describe('element rules', () => {
  it('refuses an integer outside its type instead of wrapping it (INT8 300 is not 44, UINT8 -1 is not 255)', () => {
    for (const [failure, code] of both) {
      expect(() => decodeElements([300], 'INT8', failure, 'x')).toThrow('element 0 is 300, outside INT8 [-128, 127]')
      expect(codeOf(() => decodeElements([-1], 'UINT8', failure, 'x'))).toBe(code)
    }
  })

  it('refuses one past each end of every integer type, and takes the ends themselves', () => {
    for (const datatype of integers) {
      const [min, max] = DATATYPES[datatype].range as [number | bigint, number | bigint]
      const big = typeof min === 'bigint'
      const past = big ? [`${(min as bigint) - 1n}`, `${(max as bigint) + 1n}`] : [(min as number) - 1, (max as number) + 1]
      for (const [failure, code] of both) for (const v of past) expect(codeOf(() => decodeElements([v], datatype, failure, 'x')), `${datatype} ${v}`).toBe(code)
      const ends = big ? [`${min}`, `${max}`] : [min, max]
      expect(Array.from(decodeElements(ends, datatype, inputFailure, 'x') as ArrayLike<unknown>)).toEqual(big ? [min, max] : ends)
    }
  })

  it('refuses fractions for integer types and non-numbers for numeric types', () => {
    fc.assert(
      fc.property(fc.constantFrom(...integers), fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true }), (datatype, v) => {
        expect(codeOf(() => decodeElements([v], datatype, inputFailure, 'x'))).toBe('BAD_INPUT')
      }),
    )
    for (const datatype of ['FP32', 'INT32', 'BOOL'] as const) {
      for (const v of [null, 'seven', {}, [1]]) expect(codeOf(() => decodeElements([v], datatype, inputFailure, 'x'))).toBe('BAD_INPUT')
    }
  })

  it('names a non-finite element as written, not as JSON says it (null)', () => {
    expect(() => decodeElements([Infinity], 'INT64', inputFailure, 'x')).toThrow('input "x": element 0 is Infinity, not an integer (INT64)')
    expect(() => decodeElements([1, NaN], 'INT32', inputFailure, 'x')).toThrow('input "x": element 1 is NaN, not an integer (INT32)')
  })

  it('64-bit integers: numbers up to ±(2^53 - 1), decimal strings beyond, exactly', () => {
    expect(decodeElements(['9007199254740993', -5, '18446744073709551615'.slice(0, 19)], 'INT64', inputFailure, 'x')).toEqual(BigInt64Array.of(9007199254740993n, -5n, 1844674407370955161n))
    expect(decodeElements(['18446744073709551615'], 'UINT64', inputFailure, 'x')).toEqual(BigUint64Array.of(18446744073709551615n))
    // 2^53 + 1 as a JSON number has already become 2^53: refused rather than taken silently.
    expect(() => decodeElements([2 ** 53 + 2], 'INT64', inputFailure, 'x')).toThrow(/beyond ±2\^53: send 64-bit integers this large as decimal strings/)
    expect(jsonElement(9007199254740993n)).toBe('9007199254740993')
    expect(jsonElement(9007199254740991n)).toBe(9007199254740991)
  })

  it('floats: NaN and infinities as JSON strings both ways; BOOL from true/false or 0/1', () => {
    expect(Array.from(decodeElements(['NaN', 'Infinity', '-Infinity', 1.5], 'FP64', inputFailure, 'x') as Float64Array)).toEqual([Number.NaN, Infinity, -Infinity, 1.5])
    expect([Number.NaN, Infinity, -Infinity, 2].map(jsonElement)).toEqual(['NaN', 'Infinity', '-Infinity', 2])
    expect(decodeElements([true, false, 1, 0], 'BOOL', inputFailure, 'x')).toEqual(Uint8Array.of(1, 0, 1, 0))
    expect(codeOf(() => decodeElements([2], 'BOOL', inputFailure, 'x'))).toBe('BAD_INPUT')
  })

  it('floats in a request: the strings "NaN", "Infinity", "-Infinity" and no others; an upstream\'s answer may also say "inf", "-inf"', () => {
    for (const datatype of ['FP16', 'FP32', 'FP64'] as const) {
      for (const v of ['inf', '-inf', 'nan', 'infinity', '+Infinity', 'Inf', '1.5', '']) {
        expect(() => decodeElements([1, v], datatype, inputFailure, 'x'), `${datatype} ${JSON.stringify(v)}`).toThrow(`input "x": element 1 is ${JSON.stringify(v)}, not a number`)
      }
      // Model servers write what they write (Python's str() of a float): read on purpose.
      expect(Array.from(decodeElements(['inf', '-inf', 'Infinity', 'NaN'], datatype, upstreamFailure, 'y') as Float32Array)).toEqual([Infinity, -Infinity, Infinity, Number.NaN])
      expect(codeOf(() => decodeElements(['nan'], datatype, upstreamFailure, 'y'))).toBe('UPSTREAM_BAD_RESPONSE')
    }
  })

  it('BYTES: bytes that are not UTF-8 (a PNG header) are refused, never turned into U+FFFD', () => {
    const png = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0xff, 0x00, 0xc3)
    const message = 'input "x": BYTES element 1 is not valid UTF-8: BYTES elements must be UTF-8 text here'
    for (const [failure, code] of both) {
      // Typed contents (gRPC bytes_contents, TF string_val) and raw length-prefixed bytes (OIP binary, raw_input_contents) alike.
      expect(codeOf(() => decodeElements([Buffer.from('ok'), png], 'BYTES', failure, 'x'))).toBe(code)
      const raw = Buffer.concat([toRaw({ datatype: 'BYTES', shape: [1], data: ['ok'] }), Buffer.from([png.length, 0, 0, 0]), png])
      expect(codeOf(() => fromRaw(raw, 'BYTES', [2], failure, 'x'))).toBe(code)
    }
    expect(() => decodeElements([Buffer.from('ok'), png], 'BYTES', inputFailure, 'x')).toThrow(message)
    expect(() => fromRaw(Buffer.concat([toRaw({ datatype: 'BYTES', shape: [1], data: ['ok'] }), Buffer.from([7, 0, 0, 0]), png]), 'BYTES', [2], inputFailure, 'x')).toThrow(message)
  })

  it('BYTES: UTF-8 text comes through exactly, a byte-order mark and NUL included', () => {
    const text = ['\uFEFFbom', 'nul\u0000', 'ünï €']
    expect(decodeElements(text.map((t) => Buffer.from(t, 'utf8')), 'BYTES', inputFailure, 'x')).toEqual(text)
    expect(fromRaw(toRaw({ datatype: 'BYTES', shape: [3], data: text }), 'BYTES', [3], inputFailure, 'x')).toEqual(text)
  })

  it('cuts a long value short in the message', () => {
    const err = codeOf(() => decodeElements(['x'.repeat(10_000)], 'FP32', inputFailure, 'y'.repeat(10_000)))
    expect(err).toBe('BAD_INPUT')
    try {
      decodeElements(['x'.repeat(10_000)], 'FP32', inputFailure, 'y'.repeat(10_000))
    } catch (e) {
      expect((e as Error).message.length).toBeLessThan(200)
    }
  })
})
