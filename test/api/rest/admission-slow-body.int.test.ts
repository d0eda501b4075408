// REST admission against slow bodies, on raw sockets. A predict takes its server.max_in_flight
// slot as it arrives, so that while every slot is held a new one is refused before its body;
// a body still in transit after one to two sweeps (BODY_SLOT_MS) gives its slot back, so a
// client trickling bodies cannot starve the others; its predict takes a slot again once its
// body is in (refused there, in its API's shape, if the slots filled meanwhile). The tests run
// the sweeps themselves (sweepBodiesInTransit) rather than wait for them.
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { sweepBodiesInTransit } from '../../../src/api/rest/admission.ts'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, samples } from '../../helpers.ts'
import { WINE_IO, startFaultServer, type FaultServer } from '../../executors/remote/fault-server.ts'
import '../../starter/scripted.ts'

const OVERLOADED_MESSAGE = 'more than 1 predicts in flight (server.max_in_flight)'
const NATIVE = { path: '/v1/ensembles/quick/predict', body: '{"inputs":{"x":[[0.5,0.5]]}}', refusal: { code: 'OVERLOADED', message: OVERLOADED_MESSAGE } }
const OIP = {
  path: '/v2/models/quick/infer',
  body: '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[0.5,0.5]}]}',
  refusal: { error: OVERLOADED_MESSAGE, code: 'OVERLOADED' },
}

let upstream: FaultServer
let app: FastifyInstance
let port: number

beforeAll(async () => {
  upstream = await startFaultServer()
  app = buildServer(
    configFrom(`server: { max_in_flight: 1 }
models:
  remote: { kind: oip, url: "${upstream.url}", model: hang, retries: 0, ${WINE_IO} }
  instant: { kind: scripted }
ensembles:
  held: { strategy: deadline-fallback, models: [remote], budget_ms: { default: 10000, max: 20000 } }
  quick: { strategy: deadline-fallback, models: [instant] }
`),
  )
  await app.gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})
/** Every raw connection a test opened, destroyed after it whatever its outcome (an open one would hold the server's close). */
const sockets = new Set<Socket>()
afterEach(() => {
  for (const socket of sockets) socket.destroy()
  sockets.clear()
})
afterAll(async () => {
  await app.close()
  await upstream.close()
})

const head = (path: string, length: number): string =>
  `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`

async function open(): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined) // destroyed by the test, or reset by the server after an answer
  sockets.add(socket)
  await once(socket, 'connect')
  return socket
}

interface Answer {
  status: number
  headers: Record<string, string>
  body: unknown
}

/** The first HTTP/1.1 response the socket receives (it has a content-length); rejects if the socket closes first. */
function answerOf(socket: Socket): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let text = ''
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
      const length = Number(headers['content-length'])
      if (Buffer.byteLength(text.slice(end + 4)) < length) return
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(text.slice(end + 4, end + 4 + length)) })
    })
    socket.once('close', () => reject(new Error(`the connection closed before an answer: ${JSON.stringify(text)}`)))
  })
}

/** Resolves once `n` more requests have arrived (their headers in, every request listener run), with their responses. */
function arrivals(n: number): Promise<ServerResponse[]> {
  return new Promise((resolve) => {
    const seen: ServerResponse[] = []
    const onRequest = (_req: unknown, res: ServerResponse): void => {
      seen.push(res)
      if (seen.length < n) return
      app.server.off('request', onRequest)
      resolve(seen)
    }
    app.server.on('request', onRequest)
  })
}

/** Sends a predict's headers and the first bytes of its body; resolves once the gateway has its headers. */
async function trickling(path: string, body: string): Promise<{ socket: Socket; res: ServerResponse; rest: string }> {
  const socket = await open()
  const arrived = arrivals(1)
  socket.write(head(path, Buffer.byteLength(body)) + body.slice(0, 10))
  const [res] = await arrived
  return { socket, res: res!, rest: body.slice(10) }
}

/** A predict running on an upstream that never answers: it holds a slot until release() disconnects its client. */
async function hold(): Promise<{ release: () => Promise<void> }> {
  const socket = await open()
  const body = JSON.stringify({ inputs: { input: [samples('wine').rows[0]] } })
  const running = upstream.nextRequest()
  const answered = answerOf(socket).then((a) => {
    throw new Error(`the holding predict was answered ${a.status}: ${JSON.stringify(a.body)}`)
  })
  socket.write(head('/v1/ensembles/held/predict', Buffer.byteLength(body)) + body)
  await Promise.race([running, answered])
  return {
    release: async () => {
      const aborted = upstream.nextAbort()
      socket.destroy()
      await aborted // the client went away: its run was cancelled and its upstream call aborted
    },
  }
}

const overloadedCount = (): number => app.gateway.ensembles.get('quick')!.requestStats.outcomes.get('OVERLOADED') ?? 0

const predict = (): Promise<Response> =>
  fetch(`http://127.0.0.1:${port}${NATIVE.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: NATIVE.body })

describe('admission and slow request bodies (server.max_in_flight: 1)', () => {
  it('a body in transit keeps the slot it took on arrival for two sweeps at most, then a complete predict is served, and the trickled one too once its body is in', async () => {
    const slow = await trickling(NATIVE.path, NATIVE.body)
    expect(app.gateway.admission.count).toBe(1)
    expect((await predict()).status).toBe(503) // refused on arrival: the trickling predict holds the slot
    sweepBodiesInTransit()
    expect(app.gateway.admission.count).toBe(0)
    const served = await predict()
    expect(served.status).toBe(200)
    expect(await served.json()).toMatchObject({ ensemble: 'quick' })
    const answer = answerOf(slow.socket)
    slow.socket.write(slow.rest) // its body is in: it takes a slot again, in its route
    expect((await answer).status).toBe(200)
    slow.socket.destroy()
    expect(app.gateway.admission.count).toBe(0)
  })

  it.each([
    ['native', NATIVE],
    ['Open Inference Protocol', OIP],
  ])('while a running predict holds every slot, a %s predict is refused as it arrives, before its body is sent', async (_, api) => {
    const refusedBefore = overloadedCount()
    const held = await hold()
    const socket = await open()
    const answer = answerOf(socket)
    socket.write(head(api.path, Buffer.byteLength(api.body))) // and never the body
    const refused = await answer
    expect(refused.status).toBe(503)
    expect(refused.headers['retry-after']).toBe('1')
    expect(refused.body).toEqual(api.refusal)
    expect(overloadedCount()).toBe(refusedBefore + 1)
    socket.destroy()
    await held.release()
    expect(app.gateway.admission.count).toBe(0)
    expect((await predict()).status).toBe(200)
  })

  it.each([
    ['native', NATIVE],
    ['Open Inference Protocol', OIP],
  ])('a %s predict whose body arrives after the slots filled is refused in its route, in its API\'s shape, and counted', async (_, api) => {
    const refusedBefore = overloadedCount()
    const late = await trickling(api.path, api.body) // let in while the slot was free: it takes it
    sweepBodiesInTransit() // its body is slow: the slot goes back
    const held = await hold()
    const answer = answerOf(late.socket)
    late.socket.write(late.rest)
    const refused = await answer
    expect(refused.status).toBe(503)
    expect(refused.headers['retry-after']).toBe('1')
    expect(refused.body).toEqual(api.refusal)
    expect(overloadedCount()).toBe(refusedBefore + 1)
    expect(app.gateway.admission.count).toBe(1) // the held predict's slot only
    late.socket.destroy()
    await held.release()
    expect(app.gateway.admission.count).toBe(0)
  })

  it('a client that goes away mid-body frees the slot it took on arrival', async () => {
    const gone = await trickling(NATIVE.path, NATIVE.body)
    expect(app.gateway.admission.count).toBe(1)
    const closed = once(gone.res, 'close')
    gone.socket.destroy()
    await closed
    expect(app.gateway.admission.count).toBe(0)
    expect((await predict()).status).toBe(200)
    expect(app.gateway.admission.count).toBe(0)
  })
})
