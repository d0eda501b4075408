// TensorProto answers (TF Serving's Predict over gRPC, Seldon's tftensor): one value may
// stand for a whole tensor, but never for more than max_response_bytes could hold, counted as
// what the fill holds in memory (a BYTES element a reference at least) and over all of an
// answer's fills.
import { describe, expect, it } from 'vitest'
import { upstreamFailure } from '../../src/executors/remote/errors.ts'
import { fromTensorProto } from '../../src/tensor/index.ts'

const filled = (dims: number[], dtype = 'DT_FLOAT', field = 'float_val') => ({ dtype, tensor_shape: { dim: dims.map((size) => ({ size })) }, [field]: [0.5] })

describe('TensorProto answers', () => {
  it('a single value fills its shape', () => {
    expect(fromTensorProto(filled([2, 3]), upstreamFailure, 'y', 1024)).toEqual({ datatype: 'FP32', shape: [2, 3], data: new Float32Array(6).fill(0.5) })
  })

  it.each([
    ['more than max_response_bytes holds', [1, 2_000_000]],
    ['more than an array can hold', [1e15, 1]],
  ])('a single value filling a shape of %s is UPSTREAM_BAD_RESPONSE, before anything that size is allocated', (_what, dims) => {
    let error: unknown
    try {
      fromTensorProto(filled(dims), upstreamFailure, 'y', 1024)
    } catch (err) {
      error = err
    }
    expect(error).toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE', message: expect.stringMatching(/output "y": one value fills shape .* max_response_bytes \(1024\)/) as unknown })
  })

  it('the bound is in bytes of the datatype: 1024 bytes hold 256 FP32 or 128 INT64 elements', () => {
    expect(fromTensorProto(filled([256]), upstreamFailure, 'y', 1024).data).toHaveLength(256)
    expect(() => fromTensorProto(filled([257]), upstreamFailure, 'y', 1024)).toThrow(/max_response_bytes/)
    const int64 = { dtype: 'DT_INT64', tensor_shape: { dim: [{ size: 129 }] }, int64_val: ['7'] }
    expect(() => fromTensorProto(int64, upstreamFailure, 'y', 1024)).toThrow(/max_response_bytes/)
  })

  it('a BYTES fill counts each element as the reference it holds (8 bytes), not 1: 1024 bytes hold 128', () => {
    const strings = (n: number) => ({ dtype: 'DT_STRING', tensor_shape: { dim: [{ size: n }] }, string_val: [Buffer.from('x')] })
    expect(fromTensorProto(strings(128), upstreamFailure, 'y', 1024)).toEqual({ datatype: 'BYTES', shape: [128], data: new Array(128).fill('x') })
    expect(() => fromTensorProto(strings(129), upstreamFailure, 'y', 1024)).toThrow(/one value fills shape \[129\], more than max_response_bytes \(1024\)/)
  })

  it('the bound is shared by an answer\'s fills: two outputs of 200 FP32 each do not both fit in 1024 bytes', () => {
    const fills = { bytes: 0 }
    expect(fromTensorProto(filled([200]), upstreamFailure, 'a', 1024, fills).data).toEqual(new Float32Array(200).fill(0.5))
    expect(() => fromTensorProto(filled([200]), upstreamFailure, 'b', 1024, fills)).toThrow(/output "b": one value fills shape \[200\], more than max_response_bytes \(1024\) would hold with the answer's other fills/)
  })
})

