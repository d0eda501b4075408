// A model's output with no elements but a vast shape (ConstantOfShape of [1, 1e9, 0]) is the
// model's failure, MODEL_FAILED, as an upstream's such answer is UPSTREAM_BAD_RESPONSE: its
// nested JSON (a billion `[]`) was built for the response and killed the gateway. One with
// elements past any memory fails in onnxruntime: MODEL_FAILED with onnxruntime's words.
import { describe, expect, it } from 'vitest'
import { constantOfShapeModel, servedInBothPlacements } from './identity-model.ts'

const model = constantOfShapeModel()
const app = servedInBothPlacements(model)

describe('an ONNX model answering an empty tensor of a vast shape', () => {
  it.each(['inline', 'worker'])('fails that model (%s), and the gateway answers', async (ensemble) => {
    const small = await app().inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { x: [1, 2, 0] } } })
    expect([small.statusCode, small.json().outputs.y]).toEqual([200, [[[], []]]])
    const vast = await app().inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { x: [1, 1e9, 0] } } })
    expect(vast.statusCode).toBe(502)
    expect(vast.json().models[0].error).toMatchObject({ code: 'MODEL_FAILED', message: expect.stringContaining('holds no elements in more than 1048576 cells') })
  })

  it.each(['inline', 'worker'])("fails a run past any memory with onnxruntime's message, without its C++ source location (%s)", async (ensemble) => {
    // 10^18 floats: onnxruntime's allocator refuses them at once.
    const vast = await app().inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { x: [1e6, 1e6, 1e6] } } })
    expect(vast.statusCode).toBe(502)
    const { code, message } = vast.json().models[0].error as { code: string; message: string }
    expect(code).toBe('MODEL_FAILED')
    expect(message).toMatch(/^Non-zero status code returned while running ConstantOfShape node\. Name:'' Status Message: Failed to allocate memory for requested buffer of size \d+$/)
  })
})
