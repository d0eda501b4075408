// What a client's own input does to a remote model, on the wire of real servers: an input
// the upstream refuses (HTTP 400, gRPC INVALID_ARGUMENT) fails that request but never opens
// the circuit for everyone else, and a 64-bit integer that Seldon's data.tensor (doubles)
// cannot carry is refused before it is sent, not rounded.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, samples } from '../../helpers.ts'
import { WINE_IO as io, startFaultServer, startGrpcFaultServer, type Annotation, type FaultServer, type GrpcFaultServer } from './fault-server.ts'

const row = samples('wine').rows[0]!

let http: FaultServer
let rpc: GrpcFaultServer
let app: FastifyInstance

interface Body {
  outputs?: Record<string, unknown>
  models: Annotation[]
}

async function predict(ensemble: string, inputs: object = { input: [row] }): Promise<{ statusCode: number; body: Body }> {
  const res = await app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs, budget_ms: 1000 } })
  return { statusCode: res.statusCode, body: res.json() }
}

beforeAll(async () => {
  http = await startFaultServer()
  rpc = await startGrpcFaultServer()
  const breaker = 'retries: 0, circuit_breaker: { failures: 2, reset_ms: 60000 }'
  const models: Record<string, string> = {
    'refused-rest': `kind: oip, url: "${http.url}", model: bad400, ${breaker}, ${io}`,
    'refused-grpc': `kind: oip, url: "${rpc.url}", model: invalid, ${breaker}, ${io}`,
    'crashing-grpc': `kind: oip, url: "${rpc.url}", model: error, ${breaker}, ${io}`,
    'seldon-ids': `kind: seldon, url: "${rpc.url}", ${breaker}, inputs: [{ name: ids, datatype: INT64, shape: [-1] }], outputs: [{ name: probabilities, datatype: FP32, shape: [-1, 3] }]`,
  }
  const yaml = [
    'models:',
    ...Object.entries(models).map(([name, body]) => `  ${name}: { ${body} }`),
    'ensembles:',
    ...Object.keys(models).map((m) => `  ${m}: { strategy: deadline-fallback, models: [${m}] }`),
  ].join('\n')
  app = buildServer(configFrom(yaml))
  await app.gateway.load()
})

afterAll(async () => {
  await app?.close()
  await http?.close()
  await rpc?.close()
})

describe("a client's input on a remote model", () => {
  it.each(['refused-rest', 'refused-grpc'])('%s: inputs the upstream refuses never open the circuit', async (model) => {
    for (let i = 0; i < 4; i++) {
      const res = await predict(model)
      expect(res.statusCode).toBe(502)
      expect(res.body.models[0]).toMatchObject({ status: 'error', error: { code: 'UPSTREAM_ERROR', message: expect.stringContaining('Input X contains infinity') as unknown } })
    }
  })

  it('an upstream error that is not about the input (gRPC INTERNAL) still opens it', async () => {
    for (let i = 0; i < 2; i++) expect((await predict('crashing-grpc')).body.models[0]).toMatchObject({ status: 'error' })
    expect((await predict('crashing-grpc')).body.models[0]).toMatchObject({ status: 'skipped', error: { code: 'CIRCUIT_OPEN' } })
  })

  it('Seldon over gRPC (data.tensor) refuses an INT64 beyond ±2^53 instead of sending it rounded, and sends exact ones', async () => {
    const before = rpc.seldonCalls
    const res = await predict('seldon-ids', { ids: ['9007199254740993'] })
    expect(res.statusCode).toBe(502)
    expect(res.body.models[0]!.error).toMatchObject({ code: 'MODEL_FAILED', message: expect.stringMatching(/element 0 is 9007199254740993, beyond ±2\^53/) as unknown })
    expect(rpc.seldonCalls).toBe(before)
    for (let i = 0; i < 2; i++) await predict('seldon-ids', { ids: ['9007199254740993'] })
    const exact = await predict('seldon-ids', { ids: [9007199254740991] })
    expect(exact.statusCode).toBe(200) // refusals are the client's: the circuit stayed closed
    expect(rpc.seldonCalls).toBe(before + 1)
  })
})
