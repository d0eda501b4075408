// The issuer's key set across registry swaps, on a guarded gateway serving a repository model
// with a real JWKS endpoint on a loopback port: an upload or a rollback swaps the model, not
// the auth section, so verified tokens stay verified and the issuer is not asked again (a
// backlog of model records, or an issuer outage, must not cost every JWT caller a fetch per
// swap); a config reload from the file does fetch the set again, which is how a key the
// issuer withdrew stops verifying.
import { readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { reloadFromFile } from '../../src/reload/index.ts'
import type { Logger } from '../../src/types.ts'
import { root } from '../helpers.ts'
import { serveWithRegistry, type Served } from '../registry/serve.ts'
import { tempDir } from '../temp-dirs.ts'
import { bearer } from './fixture.ts'
import { AUDIENCE, ISSUER, startIssuer, type Issuer } from './issuer.ts'

const OPS_KEY = 'ops-key-swap-1'
const model = readFileSync(join(root, 'models', 'cancer_logreg.onnx'))
const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined }

let issuer: Issuer
let served: Served

beforeEach(async () => {
  issuer = await startIssuer()
  const dir = tempDir('specserve-jwks-swap-')
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
    - { id: ops, sha256: "${createHash('sha256').update(OPS_KEY).digest('hex')}", scopes: [admin] }
  jwt: { jwks_url: "${issuer.url}", issuer: "${ISSUER}", audience: ${AUDIENCE}, jwks_cooldown_s: 30 }
  anonymous: [health]
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), quiet)
})
afterEach(async () => {
  await served.stop()
  await issuer.close()
})

/** The version of cancer-main that answered, or the refusal. */
async function predict(token: string): Promise<{ status: number; version?: string; code?: string }> {
  const res = await served.app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: [new Array(30).fill(0.5)] } }, headers: bearer(token) })
  const body = res.json<{ models?: { name: string; version: string }[]; code?: string }>()
  return { status: res.statusCode, ...(body.models ? { version: body.models.find((m) => m.name === 'cancer-main')?.version } : { code: body.code }) }
}

describe('the JWKS across registry swaps', () => {
  it('an upload and a rollback swap the model without a JWKS fetch: tokens verified before go on, new ones verify against the set in hand', async () => {
    const token = await issuer.sign({ sub: 'steady' })
    expect(await predict(token)).toEqual({ status: 200, version: '1' })
    expect(issuer.fetches()).toBe(1)

    const uploaded = await served.app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/2', headers: { ...bearer(OPS_KEY), 'content-type': 'application/octet-stream' }, payload: model })
    expect(uploaded.json()).toMatchObject({ version: { version: 2, state: 'serving' } })
    expect(await predict(token)).toEqual({ status: 200, version: '2' })
    expect(await predict(await issuer.sign({ sub: 'after-upload' }))).toEqual({ status: 200, version: '2' })

    expect((await served.app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback', headers: bearer(OPS_KEY) })).json()).toMatchObject({ serving: 1 })
    expect(await predict(token)).toEqual({ status: 200, version: '1' })
    expect(issuer.fetches()).toBe(1)
  })

  it('a config reload from the file fetches the set again: a key the issuer withdrew stops verifying', async () => {
    const token = await issuer.sign({ sub: 'withdrawn' })
    expect(await predict(token)).toEqual({ status: 200, version: '1' })
    await issuer.rotate() // the old key is no longer published
    expect(await reloadFromFile(served.gateway, quiet)).toMatchObject({ ok: true })
    expect(await predict(token)).toEqual({ status: 401, code: 'UNAUTHENTICATED' })
    expect(await predict(await issuer.sign({ sub: 'rotated' }))).toEqual({ status: 200, version: '1' })
    expect(issuer.fetches()).toBe(2)
  })
})
