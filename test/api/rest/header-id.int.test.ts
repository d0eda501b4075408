// x-request-id on a real socket: node reads a header's bytes as Latin-1, one character per
// byte, so an id sent as UTF-8 (as every client sends text) must be read back as UTF-8, and
// bytes that are not UTF-8 refused, not taken for Latin-1 text. inject() cannot show this:
// it hands the route the string it was given, with no bytes in between.
import { once } from 'node:events'
import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
import '../../starter/scripted.ts'

let app: FastifyInstance
let port: number

beforeAll(async () => {
  app = buildServer(configFrom(`models:\n  m: { kind: scripted }\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n`))
  await app.gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})
afterAll(async () => app.close())

/** One HTTP/1.1 predict whose x-request-id header is `id` as raw bytes; the status and the JSON answer. */
async function predictWithId(id: Buffer): Promise<{ status: number; body: Record<string, unknown> }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const payload = '{"inputs":{"x":[[0.5,0.5]]}}'
  const head = `POST /v1/ensembles/e/predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\nconnection: close\r\nx-request-id: `
  // Written, not ended: a client that half-closes gives up its answer (node aborts the request); `connection: close` ends the exchange.
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), id, Buffer.from(`\r\n\r\n${payload}`, 'latin1')]))
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  return { status: Number(text.split(' ')[1]), body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown> }
}

describe('x-request-id as bytes', () => {
  it('an id sent as UTF-8 is that id, as the same id in the body is', async () => {
    for (const id of ['€uro-42', 'café', '注文-7']) {
      const res = await predictWithId(Buffer.from(id, 'utf8'))
      expect([res.status, res.body.id]).toEqual([200, id])
    }
  })

  it('bytes that are not UTF-8 are 400 BAD_REQUEST, not read as Latin-1', async () => {
    const res = await predictWithId(Buffer.from([0x63, 0x61, 0x66, 0xe9])) // "café" in Latin-1
    expect([res.status, res.body]).toEqual([400, { code: 'BAD_REQUEST', message: 'x-request-id must be UTF-8 text' }])
  })
})
