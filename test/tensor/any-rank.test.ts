// A spec of any rank (a tensor its model declares without a shape; its `shape` is []): every
// codec takes a tensor of any shape for it, where a scalar spec (also []) takes only a scalar,
// and the metadata show it as [-1].
import { describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import { checkTensor, declaredShape, fromNativeTensor, fromOipJson, sameRank, shownSpec, specText, tensorFromJson, type TensorSpec } from '../../src/tensor/index.ts'

const any: TensorSpec = { name: 'x', datatype: 'FP32', shape: [], anyRank: true }
const scalar: TensorSpec = { name: 'x', datatype: 'FP32', shape: [] }
const tensor = (shape: number[]) => ({ datatype: 'FP32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }) as const

describe('a spec of any rank', () => {
  it('takes a tensor of any shape where a scalar spec takes only a scalar', () => {
    for (const shape of [[], [3], [2, 2], [1, 2, 3]]) expect(checkTensor(tensor(shape), any, inputFailure).shape).toEqual(shape)
    expect(() => checkTensor(tensor([2, 2]), scalar, inputFailure)).toThrow('input "x": shape [2, 2] does not match declared []')
    // The element count is still checked against the shape given.
    expect(() => checkTensor({ datatype: 'FP32', shape: [2, 2], data: new Float32Array(3) }, any, inputFailure)).toThrow('input "x": 3 elements do not fill shape [2, 2]')
  })

  it('takes any nesting in the native JSON, and any shape in the V2 JSON', () => {
    expect(tensorFromJson([[1, 2], [3, 4]], any, inputFailure)).toMatchObject({ shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) })
    expect(tensorFromJson([[[1], [2]]], any, inputFailure).shape).toEqual([1, 2, 1])
    expect(tensorFromJson({ shape: [], data: [7] }, any, inputFailure).shape).toEqual([])
    expect(fromOipJson({ datatype: 'FP32', shape: [3, 1], data: [1, 2, 3] }, any, inputFailure).shape).toEqual([3, 1])
  })

  it('reads a specserve.v1 tensor without a shape as a vector of its elements, as its metadata\'s [-1] says', () => {
    expect(fromNativeTensor({ datatype: 'FP32', shape: [], fp32_data: [1, 2, 3] }, any, inputFailure).shape).toEqual([3])
    expect(fromNativeTensor({ datatype: 'FP32', shape: ['2', '1'], fp32_data: [1, 2] }, any, inputFailure).shape).toEqual([2, 1])
    expect(fromNativeTensor({ datatype: 'FP32', shape: [], fp32_data: [1] }, scalar, inputFailure).shape).toEqual([])
  })

  it('is shown as [-1], said "any shape" in messages, and of a rank only another any rank shares', () => {
    expect(shownSpec(any)).toEqual({ name: 'x', datatype: 'FP32', shape: [-1] })
    expect(shownSpec(scalar)).toEqual({ name: 'x', datatype: 'FP32', shape: [] })
    expect([declaredShape(any), declaredShape(scalar)]).toEqual(['any shape', '[]'])
    expect([specText(any), specText({ ...scalar, shape: [-1, 2] })]).toEqual(['x:FP32(any shape)', 'x:FP32[-1,2]'])
    expect([sameRank(any, { ...any }), sameRank(any, scalar), sameRank(scalar, { ...scalar })]).toEqual([true, false, true])
  })
})
