// An upload's headers on a gateway without an `auth` section: x-model-description on a real
// socket (node reads a header's bytes as Latin-1, one character per byte: inject() cannot show
// this, it hands the route the string it was given), stored as the UTF-8 text it was sent as,
// or refused when its bytes are not UTF-8; and SPECSERVE_ADMIN_TOKEN read as the guard reads
// a credential, refused as the guard refuses (www-authenticate: Bearer); a compressed upload
// refused from its headers, once the token is checked.
import { once } from 'node:events'
import { connect } from 'node:net'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/types.ts'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const TOKEN = 'upload-headers-s3cret'
const model = readFileSync(join(root, 'models', 'cancer_logreg.onnx'))

let served: Served
let app: FastifyInstance
let port: number

beforeAll(async () => {
  process.env.SPECSERVE_ADMIN_TOKEN = TOKEN
  const dir = tempDir('specserve-upload-headers-')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false, keep_versions: 5, max_model_bytes: 1000000 }
models:
  m: { kind: onnx, source: repository, path: ${join(root, 'models', 'cancer_logreg.onnx')} }
ensembles:
  e: { strategy: deadline-fallback, models: [m] }
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
  app = served.app
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})
afterAll(async () => {
  delete process.env.SPECSERVE_ADMIN_TOKEN
  await served?.stop()
})

/** One HTTP/1.1 upload of the model whose x-model-description header is `description` as raw bytes; the status and the JSON answer. */
async function uploadDescribed(version: number, description: Buffer): Promise<{ status: number; body: Record<string, unknown> }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const head = `PUT /v1/models/m/versions/${version} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${model.length}\r\nconnection: close\r\nx-model-description: `
  // Written, not ended: a client that half-closes gives up its answer (node aborts the request); `connection: close` ends the exchange.
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), description, Buffer.from('\r\n\r\n', 'latin1'), model]))
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  return { status: Number(text.split(' ')[1]), body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown> }
}

describe('x-model-description as bytes', () => {
  it('a description sent as UTF-8 is stored and listed as that text', async () => {
    const res = await uploadDescribed(2, Buffer.from('modèle retrained — ✓', 'utf8'))
    expect(res.status).toBe(201)
    const listed = (await app.inject({ url: '/v1/models/m/versions' })).json<{ versions: { version: number; description: string | null }[] }>()
    expect(listed.versions.find((v) => v.version === 2)?.description).toBe('modèle retrained — ✓')
  })

  it('bytes that are not UTF-8 are 400 BAD_REQUEST, and nothing is stored', async () => {
    const res = await uploadDescribed(3, Buffer.from('mod\xe8le', 'latin1'))
    expect([res.status, res.body]).toEqual([400, { code: 'BAD_REQUEST', message: 'x-model-description must be UTF-8 text' }])
    expect((await app.inject({ url: '/v1/models/m/versions/3' })).json()).toMatchObject({ code: 'UNKNOWN_VERSION' })
  })
})

describe('content-encoding', () => {
  it('a model sent compressed is 415 UNSUPPORTED_ENCODING, and nothing is stored', async () => {
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/models/m/versions/4',
      payload: gzipSync(model),
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' },
    })
    expect([res.statusCode, res.json()]).toEqual([415, { code: 'UNSUPPORTED_ENCODING', message: 'content-encoding "gzip" is not supported: send the body uncompressed (no content-encoding, or identity)' }])
    expect((await app.inject({ url: '/v1/models/m/versions/4' })).json()).toMatchObject({ code: 'UNKNOWN_VERSION' })
  })

  it('is refused from its headers, before its body is read: one over max_model_bytes is 415, not 413', async () => {
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/models/m/versions/5',
      payload: Buffer.alloc(1_000_001),
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream', 'content-encoding': 'br' },
    })
    expect([res.statusCode, res.json().code]).toEqual([415, 'UNSUPPORTED_ENCODING'])
    // Unauthenticated, it is the credentials' refusal first.
    const anonymous = await app.inject({ method: 'PUT', url: '/v1/models/m/versions/5', payload: gzipSync(model), headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' } })
    expect(anonymous.statusCode).toBe(401)
  })
})

describe('SPECSERVE_ADMIN_TOKEN on the registry routes', () => {
  const empty = { 'content-type': 'application/octet-stream' }

  it('is refused 401 with www-authenticate: Bearer, as the guard refuses', async () => {
    for (const res of [
      await app.inject({ method: 'PUT', url: '/v1/models/m/versions/9', headers: empty, payload: model }),
      await app.inject({ method: 'POST', url: '/v1/models/m/rollback', headers: { authorization: `Bearer ${TOKEN}x` } }),
    ]) {
      expect([res.statusCode, res.headers['www-authenticate'], res.json().code]).toEqual([401, 'Bearer', 'UNAUTHENTICATED'])
    }
  })

  it('a body sent without a content-type, or as text/plain, is 400 BAD_REQUEST saying which content-type the upload reads', async () => {
    for (const type of [{}, { 'content-type': 'text/plain' }]) {
      const res = await app.inject({ method: 'PUT', url: '/v1/models/m/versions/9', headers: { authorization: `Bearer ${TOKEN}`, ...type }, payload: model })
      expect([res.statusCode, res.json()]).toEqual([
        400,
        { code: 'BAD_REQUEST', message: 'the body is not of a content-type this route reads: application/json (predict, infer, reload), application/octet-stream or application/onnx (a model upload)' },
      ])
    }
  })

  it.each([`bearer ${TOKEN}`, `BEARER  ${TOKEN} `])('takes the token as the guard reads the header: %j reaches the route', async (authorization) => {
    // An empty body: the route's own refusal, once the token let it through.
    const res = await app.inject({ method: 'PUT', url: '/v1/models/m/versions/9', headers: { ...empty, authorization } })
    expect([res.statusCode, res.json().message]).toEqual([400, 'the body is the model: ONNX bytes sent as application/octet-stream'])
  })
})
