// FP16 through onnxruntime: onnxruntime-node 1.30 reads a Float16Array as 0 bytes, so an FP16
// model failed its warm-up ("not enough space") and never loaded. A real FP16 model is served
// here inline, in the workers, and through the public API (the native session's fallback).
import ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { toOrtFeeds } from '../../../src/tensor/ort.ts'
import { identityModel, ONNX_ELEM, servedInBothPlacements } from './identity-model.ts'

const model = identityModel(ONNX_ELEM.FP16)
const app = servedInBothPlacements(model)

describe('an FP16 ONNX model', () => {
  it.each(['inline', 'worker'])('loads and answers its values %s', async (ensemble) => {
    const res = await app().inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { x: { shape: [3], data: [1.5, -2, 65504] } } } })
    expect(res.statusCode).toBe(200)
    expect(res.json().outputs.y).toEqual([1.5, -2, 65504])
  })

  it('runs through the public API with the tensors toOrtFeeds makes', async () => {
    const session = await ort.InferenceSession.create(model)
    try {
      const out = await session.run(toOrtFeeds({ x: { datatype: 'FP16', shape: [2], data: new Float16Array([0.25, 3]) } }))
      expect(Array.from(out.y!.data as ArrayLike<number>)).toEqual([0.25, 3])
    } finally {
      await session.release()
    }
  })
})
