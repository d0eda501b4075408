import { describe, expect, it } from 'vitest'
import { tensorFromContents, tensorFromOipJson, tensorFromRaw, tensorToContents, tensorToOipJson, tensorToRaw } from '../../../src/api/oip/tensors.ts'
import type { DataType, Tensor, TensorSpec } from '../../../src/types.ts'

const spec = (datatype: DataType, shape: number[] = [-1, 2]): TensorSpec => ({ name: 't', datatype, shape })

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
    const raw = tensorToRaw(tensor)
    // A copy at an odd offset: wire buffers are not aligned for typed-array views.
    const unaligned = Buffer.concat([Buffer.alloc(1), raw]).subarray(1)
    expect(tensorFromRaw(unaligned, spec(tensor.datatype), tensor.shape)).toEqual(tensor)
    expect(tensorFromContents(tensorToContents(tensor), spec(tensor.datatype), tensor.shape)).toEqual(tensor)
  })

  it('lays out raw data as the spec says', () => {
    expect([...tensorToRaw({ datatype: 'INT32', shape: [1], data: Int32Array.of(258) })]).toEqual([2, 1, 0, 0])
    expect([...tensorToRaw({ datatype: 'BYTES', shape: [2], data: ['ab', 'c'] })]).toEqual([2, 0, 0, 0, 97, 98, 1, 0, 0, 0, 99])
  })

  it('keeps INT64 exact beyond 2^53 in typed contents', () => {
    const contents = tensorToContents({ datatype: 'INT64', shape: [1], data: BigInt64Array.of(9007199254740993n) })
    expect(contents.int64_contents).toEqual(['9007199254740993'])
  })

  it('reads and writes the JSON form, flat or nested', () => {
    const t = tensorFromOipJson({ datatype: 'FP32', shape: [2, 2], data: [[1, 2], [3, 4]] }, spec('FP32'))
    expect(tensorToOipJson('t', t)).toEqual({ name: 't', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] })
    expect(tensorFromOipJson({ datatype: 'INT64', shape: [1, 2], data: [5, 6] }, spec('INT64')).data).toEqual(BigInt64Array.of(5n, 6n))
  })

  it('rejects data that does not fit the declared tensor', () => {
    expect(() => tensorFromRaw(Buffer.alloc(12), spec('FP32'), [1, 2])).toThrow(/12 raw bytes, shape \[1, 2\] of FP32 needs 8/)
    expect(() => tensorFromRaw(Buffer.from([9, 0, 0, 0, 97]), spec('BYTES', [1]), [1])).toThrow(/runs past the data/)
    expect(() => tensorFromRaw(Buffer.from([0, 0, 0, 0, 1]), spec('BYTES', [1]), [1])).toThrow(/1 raw bytes left over/)
    expect(() => tensorFromContents({ fp32_contents: [1] }, spec('FP32'), [1, 2])).toThrow(/1 elements do not fill shape \[1, 2\]/)
    expect(() => tensorFromContents({ fp32_contents: [1, 2, 3] }, spec('FP32'), [1, 3])).toThrow(/does not match declared \[-1, 2\]/)
    expect(() => tensorFromOipJson({ datatype: 'FP64', shape: [1, 2], data: [1, 2] }, spec('FP32'))).toThrow(/datatype FP64 given, model declares FP32/)
    expect(() => tensorFromOipJson({ shape: [1, 2], data: [1, 2] }, spec('FP32'))).toThrow(/datatype \(none\) given/)
  })
})
