import { describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import { checkTensor, fromContents, fromOipJson, fromRaw, toContents, toOipJson, toRaw, type DataType, type Tensor, type TensorSpec } from '../../src/tensor/index.ts'

const spec = (datatype: DataType, shape: number[] = [-1, 2]): TensorSpec => ({ name: 't', datatype, shape })
const fromRawAs = (bytes: Uint8Array, s: TensorSpec, shape: number[]): Tensor => checkTensor({ datatype: s.datatype, shape, data: fromRaw(bytes, s.datatype, shape, inputFailure, s.name) }, s, inputFailure)
const fromContentsAs = (contents: object, s: TensorSpec, shape: number[]): Tensor =>
  checkTensor({ datatype: s.datatype, shape, data: fromContents(contents, s.datatype, shape, inputFailure, s.name) }, s, inputFailure)

const samples: Tensor[] = [
  { datatype: 'FP32', shape: [2, 2], data: Float32Array.of(0.5, -1.25, 3, 1e-3) },
  { datatype: 'FP64', shape: [1, 2], data: Float64Array.of(Math.PI, -0) },
  { datatype: 'INT64', shape: [1, 2], data: BigInt64Array.of(9007199254740993n, -7n) },
  { datatype: 'INT32', shape: [1, 2], data: Int32Array.of(-2147483648, 7) },
  { datatype: 'INT8', shape: [1, 2], data: Int8Array.of(-128, 127) },
  { datatype: 'UINT8', shape: [1, 2], data: Uint8Array.of(0, 255) },
  { datatype: 'BOOL', shape: [1, 2], data: Uint8Array.of(1, 0) },
  { datatype: 'BYTES', shape: [1, 2], data: ['héllo', ''] },
]

describe('OIP tensor encodings', () => {
  it.each(samples)('round-trips $datatype through raw little-endian bytes and typed contents', (tensor) => {
    const raw = toRaw(tensor)
    // A copy at an odd offset: wire buffers are not aligned for typed-array views.
    const unaligned = Buffer.concat([Buffer.alloc(1), raw]).subarray(1)
    expect(fromRawAs(unaligned, spec(tensor.datatype), [...tensor.shape])).toEqual(tensor)
    expect(fromContentsAs(toContents(tensor), spec(tensor.datatype), [...tensor.shape])).toEqual(tensor)
  })

  it('lays out raw data as the spec says', () => {
    expect([...toRaw({ datatype: 'INT32', shape: [1], data: Int32Array.of(258) })]).toEqual([2, 1, 0, 0])
    expect([...toRaw({ datatype: 'BYTES', shape: [2], data: ['ab', 'c'] })]).toEqual([2, 0, 0, 0, 97, 98, 1, 0, 0, 0, 99])
  })

  it('keeps INT64 exact beyond 2^53 in typed contents', () => {
    const contents = toContents({ datatype: 'INT64', shape: [1], data: BigInt64Array.of(9007199254740993n) })
    expect(contents.int64_contents).toEqual(['9007199254740993'])
  })

  it('reads and writes the JSON form, flat or nested', () => {
    const t = fromOipJson({ datatype: 'FP32', shape: [2, 2], data: [[1, 2], [3, 4]] }, spec('FP32'), inputFailure)
    expect(toOipJson('t', t)).toEqual({ name: 't', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] })
    expect(fromOipJson({ datatype: 'INT64', shape: [1, 2], data: [5, 6] }, spec('INT64'), inputFailure).data).toEqual(BigInt64Array.of(5n, 6n))
  })

  it('writes BOOL as JSON booleans, as the protocol has them, and reads booleans and 0/1', () => {
    const flags: Tensor = { datatype: 'BOOL', shape: [1, 3], data: Uint8Array.of(1, 0, 1) }
    expect(toOipJson('flags', flags).data).toEqual([true, false, true])
    expect(fromOipJson({ datatype: 'BOOL', shape: [1, 3], data: [true, false, true] }, spec('BOOL', [-1, 3]), inputFailure)).toEqual(flags)
    expect(fromOipJson({ datatype: 'BOOL', shape: [1, 3], data: [1, 0, 1] }, spec('BOOL', [-1, 3]), inputFailure)).toEqual(flags)
  })

  it('rejects data that does not fit the declared tensor', () => {
    expect(() => fromRawAs(Buffer.alloc(12), spec('FP32'), [1, 2])).toThrow(/12 raw bytes, shape \[1, 2\] of FP32 needs 8/)
    expect(() => fromRawAs(Buffer.from([9, 0, 0, 0, 97]), spec('BYTES', [1]), [1])).toThrow(/runs past the data/)
    expect(() => fromRawAs(Buffer.from([0, 0, 0, 0, 1]), spec('BYTES', [1]), [1])).toThrow(/1 raw bytes left over/)
    expect(() => fromContentsAs({ fp32_contents: [1] }, spec('FP32'), [1, 2])).toThrow(/1 elements do not fill shape \[1, 2\] \(fp32_contents\)/)
    expect(() => fromContentsAs({ fp32_contents: [1, 2, 3] }, spec('FP32'), [1, 3])).toThrow(/does not match declared \[-1, 2\]/)
    // Elements in another datatype's field are refused, as the native tensor's are, not ignored (or miscounted).
    expect(() => fromContentsAs({ int_contents: [5, 6], fp32_contents: [9, 9, 9] }, spec('INT32'), [1, 2])).toThrow(/fp32_contents given for a INT32 tensor \(its elements go in int_contents\)/)
    expect(() => fromContentsAs({ int64_contents: ['5', '6'] }, spec('INT32'), [1, 2])).toThrow(/int64_contents given for a INT32 tensor/)
    expect(() => fromOipJson({ datatype: 'FP64', shape: [1, 2], data: [1, 2] }, spec('FP32'), inputFailure)).toThrow(/datatype FP64 given, model declares FP32/)
    expect(() => fromOipJson({ shape: [1, 2], data: [1, 2] }, spec('FP32'), inputFailure)).toThrow(/datatype \(none\) given/)
  })

  it('refuses raw BOOL bytes other than 0 and 1, and integers out of range in typed contents', () => {
    expect(() => fromRawAs(Buffer.from([1, 2]), spec('BOOL'), [1, 2])).toThrow(/element 1 is 2, not a boolean/)
    expect(() => fromContentsAs({ int_contents: [1, 300] }, spec('INT8'), [1, 2])).toThrow(/element 1 is 300, outside INT8/)
    expect(() => fromContentsAs({ uint_contents: [1, -1] }, spec('UINT8'), [1, 2])).toThrow(/element 1 is -1, outside UINT8/)
  })
})
