// TensorProto answers (TF Serving's Predict over gRPC, Seldon's tftensor): one value may
// stand for a whole tensor, but never for more than max_response_bytes could hold, counted as
// what the fill holds in memory (a BYTES element a reference at least) and over all of an
// answer's fills.
import { describe, expect, it } from 'vitest'
import { inputNotCarried, upstreamFailure } from '../../src/executors/remote/errors.ts'
import { examplesJson, examplesProto, fromTensorProto, predictJson, type NamedTensor, type Tensor } from '../../src/tensor/index.ts'

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


// Requests to TF Serving: its REST JSON reader types each element by its literal (DT_BOOL
// takes only true/false, DT_INT64 only a bare integer), and a tf.Example or a row-format
// instance is one row of every input.
const named = (name: string, tensor: Tensor): NamedTensor => ({ name, tensor })
const refused = (fn: () => unknown, message: RegExp): void =>
  expect(fn).toThrow(expect.objectContaining({ code: 'MODEL_FAILED', causedByInput: true, retryable: false, message: expect.stringMatching(message) as unknown }))

describe('TF Serving requests', () => {
  const mask = named('mask', { datatype: 'BOOL', shape: [1, 3], data: Uint8Array.of(1, 0, 1) })
  const ids = named('ids', { datatype: 'INT64', shape: [1, 2], data: BigInt64Array.of(9007199254740993n, -9223372036854775808n) })
  const big = named('big', { datatype: 'UINT64', shape: [1], data: BigUint64Array.of(18446744073709551615n) })

  it('REST predict writes BOOL as true/false and 64-bit integers as bare integer literals at any size', () => {
    const flag = named('flag', { datatype: 'BOOL', shape: [], data: Uint8Array.of(0) })
    expect(predictJson('s', [mask, ids, big, flag], false, inputNotCarried)).toBe(
      '{"signature_name":"s","inputs":{"mask":[[true,false,true]],"ids":[[9007199254740993,-9223372036854775808]],"big":[18446744073709551615],"flag":false}}',
    )
    expect(predictJson('s', [mask], true, inputNotCarried)).toBe('{"signature_name":"s","instances":[[true,false,true]]}')
    expect(predictJson('s', [mask, ids], true, inputNotCarried)).toBe('{"signature_name":"s","instances":[{"mask":[true,false,true],"ids":[9007199254740993,-9223372036854775808]}]}')
  })

  it('classify/regress REST writes a whole float in exponent form as it is, never `e+38.0`: the body is JSON', () => {
    const x = named('x', { datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1.5, 3.4028234663852886e38, -1e30, 2) })
    const body = examplesJson([x], inputNotCarried)
    expect(body).toBe('[{"x":[1.5,3.4028234663852886e+38,-1.0000000150474662e+30,2.0]}]')
    expect(JSON.parse(body)).toEqual([{ x: [1.5, 3.4028234663852886e38, -1.0000000150474662e30, 2] }])
  })

  it('row-format predict and tf.Examples refuse an input whose first dimension is not the batch\'s, before any call', () => {
    const a = named('a', { datatype: 'FP32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) })
    const b = named('b', { datatype: 'INT32', shape: [3], data: Int32Array.of(7, 8, 9) })
    const rows = /^input "b": shape \[3\] has 3 rows, input "a" has 2/
    refused(() => predictJson('s', [a, b], true, inputNotCarried), rows)
    refused(() => examplesJson([a, b], inputNotCarried), rows)
    refused(() => examplesProto([a, b], inputNotCarried), rows)
    const scalar = named('t', { datatype: 'FP32', shape: [], data: Float32Array.of(1) })
    refused(() => examplesJson([scalar], inputNotCarried), /^input "t": shape \[\] has no rows/)
    refused(() => predictJson('s', [a, scalar], true, inputNotCarried), /^input "t": shape \[\] has no rows/)
    // Columnar predict sends each tensor whole: TF Serving takes any shapes there.
    expect(predictJson('s', [a, b], false, inputNotCarried)).toBe('{"signature_name":"s","inputs":{"a":[[1,2],[3,4]],"b":[7,8,9]}}')
  })

  it('tf.Examples refuse a UINT64 beyond int64 (REST and gRPC), and carry 2^63 - 1 exactly', () => {
    const beyond = /^input "big": element 0 is 18446744073709551615, beyond int64/
    refused(() => examplesJson([big], inputNotCarried), beyond)
    refused(() => examplesProto([big], inputNotCarried), beyond)
    const max = named('max', { datatype: 'UINT64', shape: [1, 1], data: BigUint64Array.of(9223372036854775807n) })
    expect(examplesJson([max], inputNotCarried)).toBe('[{"max":[9223372036854775807]}]')
    expect(examplesProto([max], inputNotCarried)).toEqual({ example_list: { examples: [{ features: { feature: { max: { int64_list: { value: ['9223372036854775807'] } } } } }] } })
  })
})
