// An OIP (V2) answer that names an output twice, over REST (JSON) and gRPC (typed contents),
// through the REST API of a real gateway: refused as UPSTREAM_BAD_RESPONSE naming the output,
// where the last copy used to win silently (which copy the upstream meant, nobody can say).
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, samples } from '../../helpers.ts'
import { WINE_IO as io, startFaultServer, startGrpcFaultServer, type Annotation, type FaultServer, type GrpcFaultServer } from './fault-server.ts'

const row = samples('wine').rows[0]!

let http: FaultServer
let rpc: GrpcFaultServer
let app: FastifyInstance

beforeAll(async () => {
  http = await startFaultServer()
  rpc = await startGrpcFaultServer()
  app = buildServer(
    configFrom(`
models:
  twice-rest: { kind: oip, url: "${http.url}", model: twice, retries: 0, ${io} }
  twice-grpc: { kind: oip, url: "${rpc.url}", model: twice, retries: 0, ${io} }
ensembles:
  twice-rest: { strategy: deadline-fallback, models: [twice-rest], budget_ms: { default: 5000, max: 10000 } }
  twice-grpc: { strategy: deadline-fallback, models: [twice-grpc], budget_ms: { default: 5000, max: 10000 } }
`),
  )
  await app.gateway.load()
})
afterAll(async () => {
  await app?.close()
  await http?.close()
  await rpc?.close()
})

describe('an OIP answer with two outputs of one name', () => {
  for (const ensemble of ['twice-rest', 'twice-grpc']) {
    it(`${ensemble}: is UPSTREAM_BAD_RESPONSE naming the output, not the last copy`, async () => {
      const res = await app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { input: [row] } } })
      expect(res.statusCode).toBe(502)
      const body = res.json() as { code: string; models: Annotation[] }
      expect(body.code).toBe('ALL_MODELS_FAILED')
      expect(body.models[0]!.error).toEqual({ code: 'UPSTREAM_BAD_RESPONSE', message: 'the answer has two outputs named "label"' })
    })
  }
})
