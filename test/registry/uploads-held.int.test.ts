// Uploads are held in memory until answered (each up to max_model_bytes): at most
// MAX_UPLOADS_HELD at once. One more is refused 503 OVERLOADED before its body is read, and a
// slot comes back as soon as an upload is answered, or once a client gone meanwhile no longer
// has a handler holding its body.
import { EventEmitter, once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { MAX_UPLOADS_HELD } from '../../src/registry/routes.ts'
import { silentLogger } from '../../src/types.ts'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const TOKEN = 'held-s3cret'
const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }
let served: Served
/** Emits `reading` as an upload's body starts to be read (past the route's onRequest hooks), `closed` as a response's connection ends. */
const uploads = new EventEmitter()

beforeAll(async () => {
  process.env.SPECSERVE_ADMIN_TOKEN = TOKEN
  const dir = tempDir('specserve-held-')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo }
models: { cancer-main: { kind: onnx, source: repository, path: ${models}/cancer_logreg.onnx } }
ensembles: { cancer: { strategy: deadline-fallback, models: [cancer-main] } }
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
  served.app.addHook('preParsing', async (request) => void uploads.emit('reading', request.url))
  served.app.addHook('onRequest', async (_request, reply) => void reply.raw.once('close', () => uploads.emit('closed')))
})

afterAll(async () => {
  delete process.env.SPECSERVE_ADMIN_TOKEN
  await served.stop()
})

it(`holds at most ${MAX_UPLOADS_HELD} uploads at once: one more is 503 OVERLOADED before its body is read, and the slot comes back once one is answered`, async () => {
  const { app } = served
  const model = readFileSync(join(models, 'cancer_logreg.onnx'))
  const upload = (version: number, payload: Buffer | PassThrough) => app.inject({ method: 'PUT', url: `/v1/models/cancer-main/versions/${version}`, headers, payload })
  // Bodies still arriving: each holds a slot.
  const bodies = Array.from({ length: MAX_UPLOADS_HELD }, () => new PassThrough())
  const reading = new Set<string>()
  uploads.on('reading', (url: string) => reading.add(url))
  const pending = bodies.map((body, i) => {
    body.write(model.subarray(0, 100))
    return upload(10 + i, body)
  })
  while (reading.size < MAX_UPLOADS_HELD) await once(uploads, 'reading')

  const refused = await upload(20, model)
  expect(refused.statusCode).toBe(503)
  expect(refused.json()).toEqual({ code: 'OVERLOADED', message: expect.stringMatching(/model uploads are being read, stored or judged/) })

  bodies[0]!.end(model.subarray(100))
  expect((await pending[0]!).statusCode).toBe(201)
  expect((await upload(21, model)).statusCode).toBe(201)

  for (const [i, body] of bodies.entries()) if (i > 0) body.end(model.subarray(100))
  expect((await Promise.all(pending)).map((res) => res.statusCode)).toEqual(Array.from({ length: MAX_UPLOADS_HELD }, () => expect.any(Number)))
  expect((await upload(30, model)).statusCode).toBe(201)
})

it('keeps the slot of an upload whose client went away while it is judged, until its handler ends', async () => {
  const { app, registry } = served
  const model = readFileSync(join(models, 'cancer_logreg.onnx'))
  // Judging held: each upload's handler waits here, its body in hand.
  const judging = Promise.withResolvers<void>()
  const arrive = registry.arrive.bind(registry)
  const handlers: Promise<unknown>[] = []
  vi.spyOn(registry, 'arrive').mockImplementation((...args) => {
    const handled = judging.promise.then(() => arrive(...args))
    handlers.push(handled.catch(() => undefined))
    uploads.emit('judging')
    return handled
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const clients = Array.from({ length: MAX_UPLOADS_HELD }, () => new AbortController())
  let judged = 0
  uploads.on('judging', () => judged++)
  const answers = clients.map((client, i) => fetch(`${url}/v1/models/cancer-main/versions/${40 + i}`, { method: 'PUT', headers, body: model, signal: client.signal }).catch(() => 'gone'))
  while (judged < MAX_UPLOADS_HELD) await once(uploads, 'judging')

  let closed = 0
  uploads.on('closed', () => closed++)
  for (const client of clients) client.abort()
  while (closed < MAX_UPLOADS_HELD) await once(uploads, 'closed')
  expect(await Promise.all(answers)).toEqual(clients.map(() => 'gone'))
  // Their handlers still hold the bodies: no slot is free.
  expect((await app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/50', headers, payload: model })).json()).toMatchObject({ code: 'OVERLOADED' })

  judging.resolve()
  await Promise.all(handlers)
  vi.restoreAllMocks()
  expect((await app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/51', headers, payload: model })).statusCode).toBe(201)
})
