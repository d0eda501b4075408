// An input with no elements (a zero batch, any zero dimension) is refused with 400
// BAD_INPUT before any model runs. ONNX Runtime's KNN kernels divide by the batch: run on
// an empty tensor they kill the whole process with SIGFPE (inline, or in a worker thread).
// The demo's real KNN models are served here (one inline, on the test's own process; one in
// a worker), so a regression fails this file loudly instead of passing.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, samples } from '../../helpers.ts'
import { inferences } from '../../starter/scripted.ts'

let app: FastifyInstance
beforeAll(async () => {
  app = buildServer(
    configFrom(`
models:
  wine-knn: { kind: onnx, path: ../models/wine_knn.onnx, placement: inline }
  diabetes-knn: { kind: onnx, path: ../models/diabetes_knn.onnx, placement: worker }
  counted: { kind: scripted, delay_ms: 1 }
ensembles:
  wine: { strategy: deadline-fallback, models: [wine-knn] }
  diabetes: { strategy: deadline-fallback, models: [diabetes-knn] }
  counted: { strategy: deadline-fallback, models: [counted] }
`),
  )
  await app.gateway.load()
})
afterAll(async () => app.close())

const native = (ensemble: string, input: unknown) => app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { input } } })
const oip = (model: string, shape: number[]) =>
  app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: { inputs: [{ name: 'input', datatype: 'FP32', shape, data: [] }] } })

describe('an input with no elements', () => {
  it('is refused with 400 BAD_INPUT on the native API (the demo KNN model, which would crash on it)', async () => {
    const res = await native('wine', { shape: [0, 13], data: [] })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ code: 'BAD_INPUT', message: 'input "input": shape [0, 13] holds no elements; a predict needs at least one' })
  })

  it('is refused with 400 BAD_INPUT on the Open Inference Protocol, binary or JSON', async () => {
    const json = await oip('diabetes', [0, 10])
    expect(json.statusCode).toBe(400)
    expect(json.json()).toMatchObject({ code: 'BAD_INPUT', error: expect.stringContaining('holds no elements') })
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [0, 10], parameters: { binary_data_size: 0 } }] }))
    const binary = await app.inject({
      method: 'POST',
      url: '/v2/models/diabetes/infer',
      payload: header,
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    })
    expect(binary.statusCode).toBe(400)
    expect(binary.json()).toMatchObject({ code: 'BAD_INPUT' })
  })

  it('is refused before any executor runs, in gateway.start (the path gRPC and stream mode share)', async () => {
    let started = 0
    const count = (): number => started++
    inferences.on('infer', count)
    try {
      const empty = { datatype: 'FP32' as const, shape: [2, 0], data: new Float32Array(0) }
      expect(() => app.gateway.start({ id: 'empty', ensemble: 'counted', inputs: { x: empty } })).toThrow(expect.objectContaining({ code: 'BAD_INPUT' }))
      expect(started).toBe(0)
    } finally {
      inferences.off('infer', count)
    }
  })

  it('leaves the gateway serving: the same models answer a real row afterwards', async () => {
    const row = samples('wine').rows[0]!
    const res = await native('wine', [row])
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ outputs: { label: [samples('wine').expected['wine_knn']![0]] } })
  })
})
