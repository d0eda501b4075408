// TF Serving Classify/Regress wire mapping: tensors → tf.Examples, answers → tensors.
import { describe, expect, it } from 'vitest'
import { ModelErrorCode } from '../../src/errors.ts'
import { classifications, regressions, restPair } from '../../src/executors/tfserving-results.ts'
import { inputNotCarried } from '../../src/executors/remote/errors.ts'
import { examplesJson, examplesProto, predictJson, type Tensor } from '../../src/tensor/index.ts'

const fp32 = (rows: number[][]): Tensor => ({ datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) })

describe('tf.Examples from tensors', () => {
  it('REST: one example per row, a feature per input; whole floats keep a decimal point, integers and strings keep their type', () => {
    const inputs = [
      { name: 'x', tensor: fp32([[1, 2.5], [3, Number.NaN]]) },
      { name: 'n', tensor: { datatype: 'INT64', shape: [2, 1], data: BigInt64Array.from([7n, -2n]) } as Tensor },
      { name: 's', tensor: { datatype: 'BYTES', shape: [2], data: ['a"b', 'c'] } as Tensor },
    ]
    expect(examplesJson(inputs, inputNotCarried)).toBe('[{"x":[1.0,2.5],"n":[7],"s":["a\\"b"]},{"x":[3.0,NaN],"n":[-2],"s":["c"]}]')
  })

  it('gRPC: float_list, int64_list and bytes_list features', () => {
    const input = examplesProto([
      { name: 'x', tensor: fp32([[1, 2]]) },
      { name: 'b', tensor: { datatype: 'BOOL', shape: [1], data: Uint8Array.from([1]) } as Tensor },
    ], inputNotCarried) as { example_list: { examples: { features: { feature: Record<string, unknown> } }[] } }
    expect(input.example_list.examples).toHaveLength(1)
    expect(input.example_list.examples[0]!.features.feature).toEqual({ x: { float_list: { value: [1, 2] } }, b: { int64_list: { value: ['1'] } } })
  })
})

describe('predict bodies from tensors', () => {
  const inputs = [
    { name: 'x', tensor: fp32([[Number.NaN, 2.5], [-Infinity, Infinity]]) },
    { name: 'n', tensor: { datatype: 'INT64', shape: [2], data: BigInt64Array.from([7n, -2n]) } as Tensor },
  ]

  it('columnar: an "inputs" object, non-finite floats as bare literals', () => {
    expect(predictJson('sig', inputs, false, inputNotCarried)).toBe('{"signature_name":"sig","inputs":{"x":[[NaN,2.5],[-Infinity,Infinity]],"n":[7,-2]}}')
  })

  it('row: an "instances" object per row with several inputs, the bare list with one', () => {
    expect(predictJson('sig', inputs, true, inputNotCarried)).toBe('{"signature_name":"sig","instances":[{"x":[NaN,2.5],"n":7},{"x":[-Infinity,Infinity],"n":-2}]}')
    expect(predictJson('sig', inputs.slice(0, 1), true, inputNotCarried)).toBe('{"signature_name":"sig","instances":[[NaN,2.5],[-Infinity,Infinity]]}')
  })
})

describe('answers to tensors', () => {
  it('classifications become classes and scores of shape [rows, K]', () => {
    const out = classifications([[['0', 0.2], ['1', 0.8]], [['0', 0.9], ['1', 0.1]]], 2, restPair)
    expect(out.get('classes')).toEqual({ datatype: 'BYTES', shape: [2, 2], data: ['0', '1', '0', '1'] })
    expect(out.get('scores')).toEqual({ datatype: 'FP32', shape: [2, 2], data: [0.2, 0.8, 0.9, 0.1] })
    expect(regressions([0.5, 0.25], 2).get('outputs')).toEqual({ datatype: 'FP32', shape: [2], data: [0.5, 0.25] })
  })

  it('a wrong count, ragged classes or a malformed pair is UPSTREAM_BAD_RESPONSE', () => {
    const bad = (fn: () => unknown): void => expect(fn).toThrow(expect.objectContaining({ code: ModelErrorCode.UPSTREAM_BAD_RESPONSE }))
    bad(() => classifications([[['0', 1]]], 2, restPair))
    bad(() => classifications([[['0', 1]], [['0', 0.5], ['1', 0.5]]], 2, restPair))
    bad(() => classifications([['0']], 1, restPair))
    bad(() => regressions([1, 2, 3], 2))
  })
})
