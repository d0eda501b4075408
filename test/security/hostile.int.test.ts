// Slow and idle clients against the REST listener's limits (here small, to see them act):
// slow headers and slow bodies get 408 and are closed, idle connections are closed,
// connections past max_connections are closed as they arrive, and a legitimate predict
// is answered meanwhile.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { ListenerDrops } from '../../src/listener-drops.ts'
import { configFrom } from '../helpers.ts'
import '../starter/scripted.ts'

let app: FastifyInstance
let port: number

beforeAll(async () => {
  const limits = 'headers_timeout_ms: 400, request_timeout_ms: 800, keep_alive_timeout_ms: 300, max_connections: 30'
  app = buildServer(configFrom(`server: { ${limits} }\nmodels: { ok: { kind: scripted, label: 1 } }\nensembles: { g: { strategy: deadline-fallback, models: [ok] } }\n`))
  await app.gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})
afterAll(async () => app.close())

/** A raw connection that keeps what the server sends and says when the server closed it. */
async function raw(): Promise<{ socket: Socket; received: () => string; closed: Promise<unknown> }> {
  const socket = connect(port, '127.0.0.1')
  let data = ''
  socket.on('data', (b) => (data += b.toString()))
  socket.on('error', () => undefined) // a reset is one way of being closed
  const closed = once(socket, 'close')
  await once(socket, 'connect')
  return { socket, received: () => data, closed }
}

async function legit(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/ensembles/g/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { x: [[0.5, 0.5]] } }) })
  await res.arrayBuffer()
  return res.status
}

describe('slow and idle clients', () => {
  it.each([
    ['slow headers: 408 and closed after headers_timeout_ms', 'POST /v1/ensembles/g/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n'],
    ['slow body: 408 and closed after request_timeout_ms', 'POST /v1/ensembles/g/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"inputs":'],
  ])('%s, while others are served', async (_what, partial) => {
    const slow = await raw()
    slow.socket.write(partial)
    expect(await legit()).toBe(200)
    await slow.closed
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /)
  })

  it('idle connections that never send a byte are closed', async () => {
    const idle = await Promise.all(Array.from({ length: 20 }, raw))
    expect(await legit()).toBe(200)
    await Promise.all(idle.map((c) => c.closed))
    expect(idle.every((c) => c.socket.destroyed)).toBe(true)
  })

  it('a kept-alive connection left idle is closed after keep_alive_timeout_ms', async () => {
    const conn = await raw()
    conn.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    await conn.closed
    expect(conn.received()).toMatch(/^HTTP\/1\.1 200 /)
  })

  it('connections past max_connections are closed as they arrive, and the listener recovers', async () => {
    const held = await Promise.all(Array.from({ length: 30 }, raw))
    const extra = await raw()
    await extra.closed
    expect(extra.received()).toBe('')
    const drops = ListenerDrops.of(app.gateway).status()
    for (const c of held) c.socket.destroy()
    await Promise.all(held.map((c) => c.closed))
    expect(drops).toEqual({ dropped: { rest: 1, grpc: 0 } })
    expect(await legit()).toBe(200)
  })
})

describe('a request without credentials on a guarded gateway', () => {
  let guarded: FastifyInstance
  let guardedPort: number
  beforeAll(async () => {
    guarded = buildServer(configFrom('auth: { api_keys: [] }\nmodels: { ok: { kind: scripted, label: 1 } }\nensembles: { g: { strategy: deadline-fallback, models: [ok] } }\n'))
    await guarded.gateway.load()
    await guarded.listen({ host: '127.0.0.1', port: 0 })
    guardedPort = (guarded.server.address() as { port: number }).port
  })
  afterAll(async () => guarded.close())

  it('is refused 401 before its body is read: a 4 MB body announced but never sent', async () => {
    const socket = connect(guardedPort, '127.0.0.1')
    let data = ''
    socket.on('data', (b) => (data += b.toString()))
    await once(socket, 'connect')
    socket.write('POST /v1/ensembles/g/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 4000000\r\n\r\n')
    await once(socket, 'data')
    expect(data).toMatch(/^HTTP\/1\.1 401 /)
    socket.destroy()
  })
})
