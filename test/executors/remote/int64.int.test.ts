// INT64 is exact both ways, end to end: a client sends 64-bit integers beyond 2^53 to the
// gateway (gRPC specserve.v1, and REST as decimal strings), the gateway sends them to a
// remote OIP gRPC member, which answers them back; every digit survives every hop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHarness, unary, type Harness } from '../../api/grpc/harness.ts'
import { buildServer } from '../../../src/api/rest/server.ts'
import { startGrpcFaultServer, type GrpcFaultServer } from './fault-server.ts'

const BIG = ['9007199254740993', '-9223372036854775808', '9223372036854775807', '12345']

let upstream: GrpcFaultServer
let h: Harness

beforeAll(async () => {
  upstream = await startGrpcFaultServer()
  h = await startHarness(`models:
  echo: { kind: oip, url: "${upstream.url}", model: echo, inputs: [{ name: x, datatype: INT64, shape: [-1, 2] }], outputs: [{ name: echo, datatype: INT64, shape: [-1, 2] }] }
ensembles:
  ids: { strategy: deadline-fallback, models: [echo], budget_ms: { default: 2000, max: 5000 } }
`)
})
afterAll(async () => {
  await h.close()
  await upstream.close()
})

describe('INT64 through a remote OIP gRPC member', () => {
  it('is exact over gRPC (specserve.v1 int64_data in and out)', async () => {
    const res = await unary<{ outputs: Record<string, { int64_data: string[]; shape: string[] }> }>(h.gatewayClient, 'Predict', { ensemble: 'ids', inputs: { x: { datatype: 'INT64', shape: [2, 2], int64_data: BIG } } })
    expect(res.outputs.echo!.int64_data).toEqual(BIG)
    expect(res.outputs.echo!.shape).toEqual(['2', '2'])
  })

  it('is exact over REST, where 64-bit integers beyond 2^53 travel as decimal strings', async () => {
    const app = buildServer(h.gateway.config, { gateway: h.gateway })
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/ensembles/ids/predict', payload: { inputs: { x: [BIG.slice(0, 2), BIG.slice(2)] } } })
      expect(res.statusCode).toBe(200)
      expect(res.json().outputs.echo).toEqual([
        ['9007199254740993', '-9223372036854775808'],
        ['9223372036854775807', 12345],
      ])
    } finally {
      await app.close()
    }
  })
})
