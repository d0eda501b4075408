// What the REST listener refuses before any route — headers over 16 KiB, a request not in
// within its timeouts, bytes that are not HTTP — and a request that arrives on an open
// connection once shutdown began: each answered `{code, message}` with a catalogue code
// (docs/errors.md), never fastify's own `{error, message, statusCode}`, then closed.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { isErrorCode } from '../../src/errors.ts'
import { configFrom } from '../helpers.ts'
import '../starter/scripted.ts'

const CONFIG = 'models: { ok: { kind: scripted, label: 1 } }\nensembles: { g: { strategy: deadline-fallback, models: [ok] } }\n'

/** `prepare`: hooks to add before it listens. */
async function serve(server = '', prepare: (app: FastifyInstance) => void = () => undefined): Promise<{ app: FastifyInstance; port: number }> {
  const app = buildServer(configFrom(`server: { ${server} }\n${CONFIG}`))
  prepare(app)
  await app.gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: (app.server.address() as { port: number }).port }
}

/** A raw connection: what the server sent, and when it closed the connection. */
async function raw(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<unknown> }> {
  const socket = connect(port, '127.0.0.1')
  let data = ''
  socket.on('data', (b) => (data += b.toString()))
  socket.on('error', () => undefined) // a reset after the answer is one way of being closed
  const closed = once(socket, 'close')
  await once(socket, 'connect')
  return { socket, received: () => data, closed }
}

interface Answer {
  status: number
  headers: Record<string, string>
  body: Record<string, unknown>
}

/** The HTTP/1.1 responses in what a connection received, in order (each has a content-length). */
function answers(text: string): Answer[] {
  const out: Answer[] = []
  let rest = text
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n')
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n')
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
    const length = Number(headers['content-length'])
    const body = rest.slice(end + 4, end + 4 + length)
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(body) as Record<string, unknown> })
    rest = rest.slice(end + 4 + length)
  }
  return out
}

/** One refusal in our catalogue's shape, and the connection closed after it. */
function expectRefusal(answer: Answer, status: number, code: string): void {
  expect(answer.status).toBe(status)
  expect(Object.keys(answer.body).sort()).toEqual(['code', 'message'])
  expect(answer.body.code).toBe(code)
  expect(isErrorCode(code)).toBe(true)
  expect(answer.headers.connection).toBe('close')
}

describe('what the listener refuses before any route', () => {
  let app: FastifyInstance
  let port: number
  beforeAll(async () => ({ app, port } = await serve('headers_timeout_ms: 300, request_timeout_ms: 600')))
  afterAll(async () => app.close())

  it('headers over 16 KiB → 431 HEADERS_TOO_LARGE, saying the limit', async () => {
    const conn = await raw(port)
    conn.socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(17_000)}\r\n\r\n`)
    await conn.closed
    const [answer] = answers(conn.received())
    expectRefusal(answer!, 431, 'HEADERS_TOO_LARGE')
    expect(answer!.body.message).toBe('the request line and headers are over 16 KiB')
  })

  it('headers not in within headers_timeout_ms → 408 REQUEST_TIMEOUT, saying the limits', async () => {
    const conn = await raw(port)
    conn.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    await conn.closed
    const [answer] = answers(conn.received())
    expectRefusal(answer!, 408, 'REQUEST_TIMEOUT')
    expect(answer!.body.message).toMatch(/headers within 300 ms \(server\.headers_timeout_ms\), all of it within 600 ms \(server\.request_timeout_ms\)/)
  })

  it('a body not in within request_timeout_ms → 408 REQUEST_TIMEOUT, on a V2 URL too', async () => {
    const conn = await raw(port)
    conn.socket.write('POST /v2/models/g/infer HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"inputs":')
    await conn.closed
    expectRefusal(answers(conn.received())[0]!, 408, 'REQUEST_TIMEOUT')
  })

  it('bytes that are not HTTP/1.1 → 400 BAD_REQUEST', async () => {
    const conn = await raw(port)
    conn.socket.write('HELLO?\r\n\r\n')
    await conn.closed
    const [answer] = answers(conn.received())
    expectRefusal(answer!, 400, 'BAD_REQUEST')
    expect(answer!.body.message).toMatch(/^the request is not valid HTTP\/1\.1 \(HPE_/)
  })
})

describe('a request on an open connection once shutdown began', () => {
  it('→ 503 NOT_READY in the shape of the API asked (GET /readyz too, not its readiness body), with retry-after, and the connection closed', async () => {
    let closeBegan!: () => void
    const began = new Promise<void>((resolve) => (closeBegan = resolve))
    const { app, port } = await serve('', (app) => app.addHook('preClose', (done) => (closeBegan(), done())))
    // Each connection is mid-request (headers in, body not) when close() begins, so close()
    // leaves it open; its next request, pipelined behind the body, arrives after.
    const conns = [await raw(port), await raw(port), await raw(port)]
    for (const conn of conns) {
      const arrived = once(app.server, 'request')
      conn.socket.write('POST /v1/ensembles/g/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 29\r\n\r\n')
      await arrived
    }
    const closed = app.close()
    await began
    const body = '{"inputs":{"x":[[0.5,0.5]]}}\n'
    conns[0]!.socket.write(`${body}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`)
    conns[1]!.socket.write(`${body}GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n`)
    conns[2]!.socket.write(`${body}GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n`)
    await Promise.all(conns.map((c) => c.closed))
    await closed

    const [native, oip, readiness] = conns.map((c) => answers(c.received()))
    for (const [first] of [native!, oip!, readiness!]) expect(first!.status).toBe(200) // begun before close(): served
    expectRefusal(native![1]!, 503, 'NOT_READY')
    expect(native![1]!.body.message).toBe('the gateway is shutting down: retry on a new connection')
    expect(native![1]!.headers['retry-after']).toBe('1')
    const refusal = oip![1]!
    expect(refusal.status).toBe(503)
    expect(refusal.body).toEqual({ error: 'the gateway is shutting down: retry on a new connection', code: 'NOT_READY' })
    // As docs/api.md says: a probe still connected once shutdown began gets this, not `{ready, status}`.
    expectRefusal(readiness![1]!, 503, 'NOT_READY')
    expect(readiness![1]!.body).toEqual({ code: 'NOT_READY', message: 'the gateway is shutting down: retry on a new connection' })
    expect(readiness![1]!.headers['retry-after']).toBe('1')
  })
})
