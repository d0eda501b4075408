// The registry's routes on a guarded gateway, end to end as an operator drives them: a
// repository with a real ONNX model, GET versions behind `read`, an upload (PUT) and a
// rollback behind `admin`, SPECSERVE_ADMIN_TOKEN folded in as an admin key working for both,
// and a refused upload or rollback leaving the repository as it was.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Logger } from '../../src/types.ts'
import { root } from '../helpers.ts'
import { serveWithRegistry, type Served } from '../registry/serve.ts'
import { tempDir } from '../temp-dirs.ts'
import { bearer } from './fixture.ts'

const ADMIN_TOKEN = 'registry-admin-s3cret'
const KEYS = { reader: 'reader-key-r1', predictor: 'predictor-key-p1', ops: 'ops-key-o1' } as const
const hash = (key: string): string => createHash('sha256').update(key).digest('hex')
const model = readFileSync(join(root, 'models', 'cancer_logreg.onnx'))
const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined }

let dir: string
let served: Served
let app: FastifyInstance

beforeAll(async () => {
  process.env.SPECSERVE_ADMIN_TOKEN = ADMIN_TOKEN
  dir = tempDir('specserve-guarded-registry-')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, keep_versions: 5, max_model_bytes: 1000000 }
models:
  cancer-main: { kind: onnx, source: repository, path: ${join(root, 'models', 'cancer_logreg.onnx')} }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main] }
auth:
  api_keys:
    - { id: reader, sha256: "${hash(KEYS.reader)}", scopes: [read] }
    - { id: predictor, sha256: "${hash(KEYS.predictor)}", scopes: ["predict:*"] }
    - { id: ops, sha256: "${hash(KEYS.ops)}", scopes: [admin] }
  anonymous: [health]
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), quiet)
  app = served.app
})
afterAll(async () => {
  delete process.env.SPECSERVE_ADMIN_TOKEN
  await served.stop()
})

const list = (headers: Record<string, string> = {}) => app.inject({ url: '/v1/models/cancer-main/versions', headers })
const one = (version: number, headers: Record<string, string> = {}) => app.inject({ url: `/v1/models/cancer-main/versions/${version}`, headers })
const upload = (version: number, headers: Record<string, string> = {}) =>
  app.inject({ method: 'PUT', url: `/v1/models/cancer-main/versions/${version}`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: model })
const rollback = (headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback', headers })
/** What the reader sees: the serving version and every version stored. */
const state = async (): Promise<{ serving: number; versions: number[] }> => {
  const body = (await list(bearer(KEYS.reader))).json<{ serving: number; versions: { version: number }[] }>()
  return { serving: body.serving, versions: body.versions.map((v) => v.version) }
}
const stored = (version: number): boolean => existsSync(join(dir, 'repo', 'cancer-main', String(version)))

describe('the registry routes under the guard', () => {
  it('GET versions needs read: 401 without credentials, 403 with predict or admin alone, 200 with read', async () => {
    for (const res of [await list(), await one(1)]) {
      expect(res.statusCode).toBe(401)
      expect(res.headers['www-authenticate']).toBe('Bearer')
      expect(res.json()).toMatchObject({ code: 'UNAUTHENTICATED' })
    }
    for (const key of [KEYS.predictor, KEYS.ops, ADMIN_TOKEN]) {
      expect((await list(bearer(key))).json()).toEqual({ code: 'PERMISSION_DENIED', message: 'needs scope read' })
      expect((await one(1, bearer(key))).statusCode).toBe(403)
    }
    expect((await list(bearer(KEYS.reader))).json()).toMatchObject({ model: 'cancer-main', serving: 1, versions: [{ version: 1, state: 'serving' }] })
    expect((await one(1, bearer(KEYS.reader))).json()).toMatchObject({ version: 1, state: 'serving' })
  })

  it('PUT needs admin: refused without credentials, with read or predict, nothing stored; the admin token and an admin key upload', async () => {
    expect((await upload(2)).statusCode).toBe(401)
    expect((await upload(2, bearer('not-a-key'))).statusCode).toBe(401)
    for (const key of [KEYS.reader, KEYS.predictor]) expect((await upload(2, bearer(key))).json()).toEqual({ code: 'PERMISSION_DENIED', message: 'needs scope admin' })
    // Refused before the body is read: one over max_model_bytes gets 401, not 413 (which an admin gets).
    const huge = (headers: Record<string, string>) => app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/2', headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(2_000_000) })
    expect((await huge({})).statusCode).toBe(401)
    expect((await huge(bearer(KEYS.ops))).statusCode).toBe(413)
    expect(stored(2)).toBe(false)
    expect(await state()).toEqual({ serving: 1, versions: [1] })

    const byToken = await upload(2, bearer(ADMIN_TOKEN))
    expect(byToken.statusCode).toBe(201)
    expect(byToken.json()).toMatchObject({ model: 'cancer-main', version: { version: 2, state: 'serving', source: 'upload' } })
    const byKey = await upload(3, bearer(KEYS.ops))
    expect(byKey.statusCode).toBe(201)
    expect(await state()).toMatchObject({ serving: 3 })
    expect(stored(3)).toBe(true)
  })

  it('rollback needs admin: refused without credentials or with read, serving unchanged; the admin token and an admin key roll back', async () => {
    expect((await rollback()).statusCode).toBe(401)
    for (const key of [KEYS.reader, KEYS.predictor]) expect((await rollback(bearer(key))).statusCode).toBe(403)
    expect((await state()).serving).toBe(3)

    expect((await rollback(bearer(ADMIN_TOKEN))).json()).toMatchObject({ model: 'cancer-main', serving: 2 })
    expect((await rollback(bearer(KEYS.ops))).json()).toMatchObject({ model: 'cancer-main', serving: 1 })
    expect((await state()).serving).toBe(1)
    // Predicts still need their own scope, whatever the registry does.
    const payload = { inputs: { input: [new Array(30).fill(0.5)] } }
    expect((await app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload, headers: bearer(ADMIN_TOKEN) })).statusCode).toBe(403)
    const served = await app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload, headers: bearer(KEYS.predictor) })
    expect(served.json()).toMatchObject({ models: [{ name: 'cancer-main', version: '1' }] })
  })
})

describe('/readyz on a guarded gateway', () => {
  const readyz = (headers: Record<string, string> = {}) => app.inject({ url: '/readyz', headers })

  it('anonymous probes and callers without read get the verdict only; a reader also sees the parts (repository models and versions)', async () => {
    for (const headers of [{}, bearer(KEYS.predictor), bearer(KEYS.ops)]) {
      const res = await readyz(headers)
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({ ready: true, status: 'ready' })
    }
    const full = await readyz(bearer(KEYS.reader))
    expect(full.statusCode).toBe(200)
    expect(full.json()).toMatchObject({ ready: true, status: 'ready', registry: { 'cancer-main': { serving: expect.any(Number) } } })
  })
})
