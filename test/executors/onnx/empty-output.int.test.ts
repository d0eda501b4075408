// A model's output with no elements but a vast shape (ConstantOfShape of [1, 1e9, 0]) is the
// model's failure, MODEL_FAILED, as an upstream's such answer is UPSTREAM_BAD_RESPONSE: its
// nested JSON (a billion `[]`) was built for the response and killed the gateway.
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
})
