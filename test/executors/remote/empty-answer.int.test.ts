// An upstream answer with no elements but a vast shape ([rows, 1e9, 0], about 100 bytes) is
// refused as UPSTREAM_BAD_RESPONSE. It holds no elements, so no element count bounded it, and
// its JSON form (a billion `[]`) was built in memory: the gateway died of a fatal heap error.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'

let upstream: Server
let app: FastifyInstance
beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ model_name: 'm', outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1e9, 0], data: [] }] }))
    })
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const { port } = upstream.address() as AddressInfo
  app = buildServer(
    configFrom(`
models:
  vast: { kind: oip, url: "http://127.0.0.1:${port}", model: m, retries: 0, inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }], outputs: [{ name: y, datatype: FP32, shape: [-1, -1, -1] }] }
ensembles:
  vast: { strategy: deadline-fallback, models: [vast], budget_ms: { default: 5000, max: 10000 } }
`),
  )
  await app.gateway.load()
})
afterAll(async () => {
  await app.close()
  upstream.close()
})

describe('an upstream answer with no elements in a vast shape', () => {
  it('is refused as UPSTREAM_BAD_RESPONSE, and the gateway answers', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/vast/predict', payload: { inputs: { x: [[1, 2]] } } })
    expect(res.statusCode).toBe(502)
    const [annotation] = res.json().models
    expect(annotation.error).toEqual({ code: 'UPSTREAM_BAD_RESPONSE', message: 'output "y": shape [1, 1000000000, 0] holds no elements in more than 1048576 cells' })
  })
})
