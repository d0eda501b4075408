// A REST client that goes away cancels its predict, on a real socket: the gateway aborts
// the upstream call it made for it (the upstream sees the request aborted), annotates the
// result CANCELLED, counts it, records it, and frees its admission slot.
import { once } from 'node:events'
import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import type { PredictResult } from '../../../src/types.ts'
import { configFrom, samples } from '../../helpers.ts'
import { WINE_IO, startFaultServer, type FaultServer } from '../../executors/remote/fault-server.ts'

let upstream: FaultServer
let app: FastifyInstance
let port: number

beforeAll(async () => {
  upstream = await startFaultServer()
  app = buildServer(
    configFrom(`models:
  remote: { kind: oip, url: "${upstream.url}", model: hang, retries: 0, ${WINE_IO} }
ensembles:
  wine: { strategy: deadline-fallback, models: [remote], budget_ms: { default: 10000, max: 20000 } }
`),
  )
  await app.gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})
afterAll(async () => {
  await app.close()
  await upstream.close()
})

describe('a REST client that disconnects', () => {
  it.each([
    ['/v1/ensembles/wine/predict', 'gone'],
    // The router decodes what the raw URL hides: the same predict, cancelled the same way.
    ['/v1/ensembles/wine/predic%74', 'gone-encoded'],
  ])('cancels its predict (%s): the upstream call is aborted, the result is CANCELLED, counted and recorded', async (path, id) => {
    const counted = app.gateway.ensembles.get('wine')!.requestStats.outcomes.get('CANCELLED') ?? 0
    const recorded = new Promise<PredictResult>((resolve) => (app.gateway.hooks.onResult = resolve))
    const body = JSON.stringify({ id, inputs: { input: [samples('wine').rows[0]] } })
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    const arrived = upstream.nextRequest()
    socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    expect(await arrived).toBe('hang') // the gateway called the upstream for it
    const aborted = upstream.nextAbort()
    socket.destroy()
    await aborted // long before the 10 s budget: the call was cancelled, not left to run out
    const result = await recorded
    expect(result.id).toBe(id)
    expect(result.error?.code).toBe('CANCELLED')
    expect(result.models[0]).toMatchObject({ name: 'remote', status: 'cancelled' })
    expect(app.gateway.ensembles.get('wine')!.requestStats.outcomes.get('CANCELLED')).toBe(counted + 1)
    expect(app.gateway.admission.count).toBe(0)
  })
})
