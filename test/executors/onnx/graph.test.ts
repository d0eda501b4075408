// Reading an ONNX graph's declared inputs and outputs from the file: a tensor type without a
// shape (unknown rank) told from a shape of no dimensions (a scalar), on hand-written models.
import { describe, expect, it } from 'vitest'
import { unknownRankTensors } from '../../../src/executors/onnx/graph.ts'
import { initializer, modelBytes, node, ONNX_ELEM, valueInfo } from './onnx-proto.ts'

describe('unknownRankTensors', () => {
  it('names the inputs and outputs declared without a shape, and no scalar nor shaped tensor', () => {
    const bytes = modelBytes({
      nodes: [node('Identity', ['any'], ['any_out']), node('Identity', ['scalar'], ['scalar_out']), node('Add', ['rows', 'one'], ['rows_out'])],
      initializers: [initializer('one', ONNX_ELEM.FP32, [1])],
      inputs: [valueInfo('any', ONNX_ELEM.FP32, null), valueInfo('scalar', ONNX_ELEM.FP32, []), valueInfo('rows', ONNX_ELEM.FP32, ['N', 2])],
      outputs: [valueInfo('any_out', ONNX_ELEM.FP32, null), valueInfo('scalar_out', ONNX_ELEM.INT64, []), valueInfo('rows_out', ONNX_ELEM.FP32, ['N', 2])],
    })
    expect([...unknownRankTensors(bytes)]).toEqual(['any', 'any_out'])
  })

  it('refuses bytes that are not a model, rather than reading past them', () => {
    expect(() => unknownRankTensors(Buffer.from([0x3a, 0x40, 0x01]))).toThrow()
  })
})
