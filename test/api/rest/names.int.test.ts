// A model or ensemble name is one URL path segment of its REST routes, and fastify refuses
// a segment over maxParamLength (100 characters, percent-encoded). The config refuses longer
// names at load, so every name it accepts can be called over REST, not only over gRPC.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, configIssues, samples } from '../../helpers.ts'

const longest = 'e'.repeat(100)
const yaml = (ensemble: string, model: string) => `
models:
  ${model}: { kind: onnx, path: ../models/cancer_logreg.onnx }
ensembles:
  ${ensemble}: { strategy: deadline-fallback, models: [${model}] }
`

describe('model and ensemble names', () => {
  it('are refused at load when longer than a REST path segment can be, percent-encoded, with the line', () => {
    const issues = configIssues(yaml('e'.repeat(101), 'é'.repeat(17)))
    expect(issues).toHaveLength(2)
    expect(issues).toContainEqual(expect.objectContaining({ path: `ensembles.${'e'.repeat(101)}`, line: 5, message: expect.stringContaining('name too long: 101 characters in a URL') }))
    expect(issues).toContainEqual(expect.objectContaining({ path: `models.${'é'.repeat(17)}`, line: 3, message: expect.stringContaining('name too long: 102 characters in a URL') }))
  })

  describe('of 100 characters', () => {
    let app: FastifyInstance
    beforeAll(async () => {
      app = buildServer(configFrom(yaml(longest, 'm'.repeat(100))))
      await app.gateway.load()
    })
    afterAll(async () => app.close())

    it('are routable: the ensemble answers a predict, the model its stats', async () => {
      const row = samples('cancer').rows[0]!
      const predict = await app.inject({ method: 'POST', url: `/v1/ensembles/${longest}/predict`, payload: { inputs: { input: [row] } } })
      expect(predict.statusCode).toBe(200)
      expect(predict.json()).toMatchObject({ ensemble: longest, decision: { chosen: 'm'.repeat(100) } })
      const model = await app.inject({ method: 'GET', url: `/v1/models/${'m'.repeat(100)}` })
      expect(model.statusCode).toBe(200)
    })
  })
})
