import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
import '../../starter/scripted.ts' // registers kind: scripted

const CONFIG = 'models: { ok: { kind: scripted, label: 1 } }\nensembles: { g: { strategy: deadline-fallback, models: [ok] } }\n'

const listeners = async (_request: unknown, reply: FastifyReply) => ({ finish: reply.raw.listenerCount('finish'), error: reply.raw.listenerCount('error') })

/** A server logging to memory, with probe routes: its response's listeners, an error, a reply sent twice. */
function serverWithLog(): { app: FastifyInstance; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) })
  const app = buildServer(configFrom(CONFIG), { logger })
  app.get('/probe', listeners)
  app.get('/boom', async () => {
    throw new Error('kaput')
  })
  app.get('/twice', (_request, reply) => {
    void reply.send({ first: true })
    void reply.send({ second: true })
  })
  return { app, lines }
}

let app: FastifyInstance | undefined
afterEach(async () => {
  delete process.env.LOG_REQUESTS
  await app?.close()
  app = undefined
})

describe('REST logging', () => {
  it('costs a request nothing when requests are not logged: no response listeners, while the app still logs to its logger', async () => {
    const server = serverWithLog()
    app = server.app
    // The listeners a fastify without a logger has (inject's own): a logger must add none.
    const bare = Fastify()
    bare.get('/probe', listeners)
    const without = (await bare.inject('/probe')).json()
    await bare.close()
    expect((await app.inject('/probe')).json()).toEqual(without)
    app.log.info({ port: 1 }, 'hello')
    expect(server.lines).toContainEqual(expect.objectContaining({ msg: 'hello', port: 1 }))
    expect(server.lines.some((l) => l.msg === 'request completed' || l.msg === 'incoming request')).toBe(false)
  })

  it('logs an unexpected error with its request id', async () => {
    const server = serverWithLog()
    app = server.app
    const res = await app.inject({ url: '/boom', headers: { 'x-request-id': 'r-42' } })
    expect(res.statusCode).toBe(500)
    expect(res.json()).toMatchObject({ code: 'INTERNAL' })
    const line = server.lines.find((l) => l.msg === 'unexpected error')
    expect(line).toMatchObject({ level: 50, reqId: 'r-42', err: { message: 'kaput' } })
  })

  it("logs what fastify itself warns about a request, and where it listens, without LOG_REQUESTS", async () => {
    const server = serverWithLog()
    app = server.app
    expect((await app.inject('/twice')).json()).toEqual({ first: true })
    expect(server.lines).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringContaining('Reply was already sent') }))
    await app.listen({ host: '127.0.0.1', port: 0 })
    expect(server.lines).toContainEqual(expect.objectContaining({ msg: expect.stringMatching(/^Server listening at http:\/\/127\.0\.0\.1:\d+$/) }))
  })

  it('logs each request through fastify with LOG_REQUESTS=1', async () => {
    process.env.LOG_REQUESTS = '1'
    const server = serverWithLog()
    app = server.app
    await app.inject({ url: '/healthz', headers: { 'x-request-id': 'r-7' } })
    expect(server.lines).toContainEqual(expect.objectContaining({ msg: 'incoming request', reqId: 'r-7' }))
    expect(server.lines).toContainEqual(expect.objectContaining({ msg: 'request completed', reqId: 'r-7', res: { statusCode: 200 } }))
  })

  it('logs a request\'s path without its query string, which can carry a credential', async () => {
    process.env.LOG_REQUESTS = '1'
    const server = serverWithLog()
    app = server.app
    await app.inject({ url: '/healthz?token=s3cret&x=1', headers: { 'x-request-id': 'r-8' } })
    expect(server.lines).toContainEqual(expect.objectContaining({ msg: 'incoming request', reqId: 'r-8', req: expect.objectContaining({ method: 'GET', url: '/healthz' }) }))
    expect(JSON.stringify(server.lines)).not.toContain('s3cret')
  })

  // request.id goes into every request line and the `unexpected error` line: only an id the
  // predict would take (at most 1024 bytes of UTF-8, no control character) is logged as it is.
  // inject hands the route the string given: a header's bytes as node reads them, one Latin-1 character per byte.
  const asNodeReadsIt = (bytes: Buffer): string => bytes.toString('latin1')
  const COUNTER = /^req-[0-9a-z]+$/

  it('names a request by its x-request-id only when a predict would take it, by a counter otherwise', async () => {
    process.env.LOG_REQUESTS = '1'
    const server = serverWithLog()
    app = server.app
    const refused = ['x'.repeat(15 * 1024), 'a\tb', asNodeReadsIt(Buffer.from([0xc2, 0x85])), asNodeReadsIt(Buffer.from('caf\xe9', 'latin1'))]
    for (const id of refused) {
      server.lines.length = 0
      await app.inject({ url: '/healthz', headers: { 'x-request-id': id } })
      const logged = server.lines.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed').map((l) => String(l.reqId).slice(0, 40))
      expect(logged, JSON.stringify(id.slice(0, 20))).toEqual([expect.stringMatching(COUNTER), expect.stringMatching(COUNTER)])
    }
    server.lines.length = 0
    await app.inject({ url: '/healthz', headers: { 'x-request-id': asNodeReadsIt(Buffer.from('café-9', 'utf8')) } })
    expect(server.lines.filter((l) => l.msg === 'incoming request').map((l) => l.reqId)).toEqual(['café-9'])
  })

  it('logs an unexpected error under the counter when its x-request-id would be refused', async () => {
    const server = serverWithLog()
    app = server.app
    expect((await app.inject({ url: '/boom', headers: { 'x-request-id': 'r-1\n{"level":60}' } })).statusCode).toBe(500)
    expect(server.lines.find((l) => l.msg === 'unexpected error')).toMatchObject({ reqId: expect.stringMatching(COUNTER) })
  })
})
