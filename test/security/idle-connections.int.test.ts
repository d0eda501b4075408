// Connections that never carry a request: they are bounded by headers_timeout_ms over TLS as
// in plaintext (a TLS handshake, on either listener, must be done within it, not Node's 120 s), and they do not
// hold a stop. As the stop begins, one that has sent nothing (over TLS: no ClientHello, or no
// request after the handshake) is closed with the idle kept-alive ones; at the end of the
// grace period every connection is cut, TLS ones whose handshake is not done included (they
// never reached HTTP, where Node's closeAllConnections() looks).
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { configFrom, freePort, outputContains, root, startProcess } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { makePki, type Pair, type Pki } from './certs.ts'
import { serve as serveBoth } from './served.ts'
import '../starter/scripted.ts'

const MODELS = 'models: { ok: { kind: scripted, label: 1 } }\nensembles: { g: { strategy: deadline-fallback, models: [ok] } }\n'
/** A client's first handshake message, as a TLS client sends it (taken by a TCP server that answers nothing). */
async function clientHello(): Promise<Buffer> {
  const taker = createServer()
  taker.listen(0, '127.0.0.1')
  await once(taker, 'listening')
  const client = tlsConnect({ host: '127.0.0.1', port: (taker.address() as { port: number }).port, servername: 'localhost' })
  client.on('error', () => undefined)
  const [socket] = (await once(taker, 'connection')) as [Socket]
  const [hello] = (await once(socket, 'data')) as [Buffer]
  client.destroy()
  socket.destroy()
  taker.close()
  return hello
}

let pki: Pki
let pair: Pair
beforeAll(() => {
  pki = makePki()
  pair = pki.issue('idle-server')
})
afterAll(() => pki.remove())

const apps: FastifyInstance[] = []
afterEach(async () => {
  for (const app of apps.splice(0)) {
    app.server.closeAllConnections()
    await app.close()
  }
})

async function serve(server: string): Promise<{ app: FastifyInstance; port: number }> {
  const app = buildServer(configFrom(`server: { ${server} }\n${MODELS}`))
  apps.push(app)
  await app.gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: (app.server.address() as { port: number }).port }
}

/** A raw TCP connection, once connected, with when it was closed by the other end. */
async function raw(port: number): Promise<{ socket: Socket; closed: Promise<number> }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined) // a reset is one way of being closed
  const closed = once(socket, 'close').then(() => performance.now())
  await once(socket, 'connect')
  return { socket, closed }
}

/** A TLS handshake begun and stalled: the ClientHello sent and answered (so the server has read from it), the client's Finished never sent. */
async function stalledHandshake(port: number): Promise<{ socket: Socket; closed: Promise<number> }> {
  const conn = await raw(port)
  conn.socket.write(await clientHello())
  await once(conn.socket, 'data') // the ServerHello
  return conn
}

describe('a TLS connection that never sends its ClientHello', () => {
  it('is closed within headers_timeout_ms of its opening, as a plaintext one is (not after Node\'s 120 s handshake timeout)', async () => {
    const { port } = await serve(`headers_timeout_ms: 300, request_timeout_ms: 600, tls: { cert: "${pair.cert}", key: "${pair.key}" }`)
    const opened = performance.now()
    const { closed } = await raw(port)
    expect((await closed) - opened).toBeLessThan(3000)
  })
})

describe('a connection to the gRPC TLS listener that never sends its ClientHello', () => {
  it('is closed within headers_timeout_ms of its opening, as on the REST listener (not after Node\'s 120 s handshake timeout)', async () => {
    const served = await serveBoth(`server: { headers_timeout_ms: 300, request_timeout_ms: 600, tls: { cert: "${pair.cert}", key: "${pair.key}" } }\n${MODELS}`)
    try {
      const opened = performance.now()
      const { socket, closed } = await raw(served.grpcPort)
      // Bounded here, so that a listener that keeps it (Node's 120 s) fails the test rather than timing it out.
      const closedAt = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(Infinity), 3000))])
      socket.destroy()
      expect(closedAt - opened).toBeLessThan(3000)
    } finally {
      await served.close()
    }
  })
})

describe('app.close() (the start of a stop)', () => {
  it('closes a plaintext connection that has sent nothing, rather than waiting for its headers timeout', async () => {
    const { app, port } = await serve('headers_timeout_ms: 20000')
    const quiet = await raw(port)
    await app.close()
    await quiet.closed
  })

  it('closes TLS connections without a ClientHello, or without a request after the handshake; the grace cut ends a stalled handshake', async () => {
    const { app, port } = await serve(`headers_timeout_ms: 20000, tls: { cert: "${pair.cert}", key: "${pair.key}" }`)
    const noHello = await raw(port)
    const handshaken = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca), servername: 'localhost' })
    handshaken.on('error', () => undefined)
    const handshakenClosed = once(handshaken, 'close').then(() => performance.now())
    await once(handshaken, 'secureConnect')
    const stalled = await stalledHandshake(port)
    let stalledClosedAt = Infinity
    void stalled.closed.then((at) => (stalledClosedAt = at))
    const closing = app.close()
    const [quietAt, handshakenAt] = await Promise.all([noHello.closed, handshakenClosed])
    // Both went as the stop began; the stalled handshake is still open (it is not idle: it is the grace period's).
    expect(stalledClosedAt).toBe(Infinity)
    expect(Math.max(quietAt, handshakenAt)).toBeLessThan(stalledClosedAt)
    app.server.closeAllConnections() // the CLI's cut at the end of shutdown_grace_ms
    await Promise.all([stalled.closed, closing])
  })
})

describe('specserve serve with server.tls, at SIGTERM', () => {
  it('exits within the grace period although a TLS connection never sent its ClientHello and another stalled in its handshake', async () => {
    const dir = tempDir('specserve-idle-')
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `server: { host: 127.0.0.1, shutdown_grace_ms: 1500, headers_timeout_ms: 20000, tls: { cert: "${pair.cert}", key: "${pair.key}" } }\n` +
        `models: { lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} } }\nensembles: { e: { strategy: deadline-fallback, models: [lr] } }\n`,
    )
    const port = await freePort()
    const proc = startProcess(process.execPath, [join(root, 'src', 'cli.ts'), 'serve', '-c', join(dir, 'gateway.yaml')], { env: { SPECSERVE_REST_PORT: String(port), SPECSERVE_GRPC_PORT: 'off' } })
    try {
      await outputContains(proc, '"msg":"ready"')
      const noHello = await raw(port)
      const stalled = await stalledHandshake(port)
      const exited = once(proc.child, 'exit') as Promise<[number | null]>
      const signalled = performance.now()
      process.kill(proc.child.pid!, 'SIGTERM')
      const quietAt = await noHello.closed
      const [code] = await exited
      const exitedAt = performance.now()
      await stalled.closed
      expect(code).toBe(0)
      // The quiet one as the stop began; the stalled one at the grace cut, not at Node's 120 s handshake timeout.
      expect(quietAt - signalled).toBeLessThan(1500)
      expect(exitedAt - signalled).toBeLessThan(1500 + 5000)
    } finally {
      await proc.stop('SIGKILL')
    }
  })
})
