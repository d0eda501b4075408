// An upstream that takes longer than 300 s to answer, within a budget longer than that: the
// call's signal carries its deadline, and the pool a remote model shares adds no timers of its
// own (undici's default headers and body timeouts are 300 s each). Undici's timers run on the
// global setTimeout (a 499 ms tick), so fake timers pass those 300 s at once; the server and
// the socket are real, and each step waits for what the server or the client has seen.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { parseRemote, type RemoteModelConfig } from '../../../src/executors/remote/config.ts'
import { acquirePool, requestJson } from '../../../src/executors/remote/http.ts'

/** Past undici's 300 s defaults, by more than its timers' resolution. */
const LONGER_THAN_UNDICI_DEFAULTS_MS = 310_000

let server: Server
let url: string
const arrivals: ((res: ServerResponse) => void)[] = []

/** Resolves with the response of the next request, once the server has read all of it. */
const nextRequest = (): Promise<ServerResponse> => new Promise((resolve) => arrivals.push(resolve))

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => arrivals.shift()?.(res))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  // One fake clock for the file: undici keeps its tick timer across requests (refresh()), so a
  // clock replaced between tests would leave it on one that no longer moves.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
})

afterAll(async () => {
  vi.useRealTimers()
  server.closeAllConnections()
  server.close()
  await once(server, 'close')
})

/** The shared pool of a remote model on this server, as a model's config makes it. */
function pool() {
  const ctx = { baseDir: '.', problem: (field: string, message: string) => expect.fail(`${field}: ${message}`), warn: () => undefined }
  return acquirePool(parseRemote({ kind: 'oip', url, model: 'm' } as RemoteModelConfig, ctx), 'm')
}

describe('a remote model whose upstream answers after more than 300 s', () => {
  it('reads an answer whose headers come after 310 s: no headers timeout of undici\'s own', async () => {
    const { upstream, release } = pool()
    try {
      const arrived = nextRequest()
      // Settled as a value either way: a call cut meanwhile shows as its error's message.
      const answer = requestJson(upstream, { method: 'POST', path: '/v2/models/m/infer', headers: {}, body: '{"inputs":[]}', signal: new AbortController().signal }).catch((err: Error) => err.message)
      const res = await arrived
      await vi.advanceTimersByTimeAsync(LONGER_THAN_UNDICI_DEFAULTS_MS)
      res.setHeader('content-type', 'application/json')
      res.end('{"outputs":[]}')
      expect(await answer).toEqual({ outputs: [] })
    } finally {
      await release()
    }
  })

  it('reads an answer whose body pauses for 310 s after its headers: no body timeout of undici\'s own', async () => {
    const { upstream, release } = pool()
    try {
      const arrived = nextRequest()
      const pending = upstream.pool.request({ method: 'POST', path: '/v2/models/m/infer', headers: { 'content-type': 'application/json' }, body: '{"inputs":[]}' })
      const res = await arrived
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"outputs":')
      const answer = await pending // the headers are in: the body is being read
      const text = answer.body.text().catch((err: Error) => err.message)
      await vi.advanceTimersByTimeAsync(LONGER_THAN_UNDICI_DEFAULTS_MS)
      res.end('[]}')
      expect([answer.statusCode, await text]).toEqual([200, '{"outputs":[]}'])
    } finally {
      await release()
    }
  })
})
