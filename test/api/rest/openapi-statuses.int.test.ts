// /openapi.json lists every status a route can answer (docs/security.md): the registry's
// upload and rollback are driven through each outcome their code has, on a real repository,
// and the statuses seen are compared with those the document declares. 403 and 429 come
// only from the guard (an `auth` section): test/security/registry.int.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../../src/types.ts'
import { root } from '../../helpers.ts'
import { serveWithRegistry, type Served } from '../../registry/serve.ts'

const TOKEN = 'openapi-statuses-admin'
const auth = { authorization: `Bearer ${TOKEN}` }
const model = readFileSync(join(root, 'models', 'cancer_logreg.onnx'))
const GUARD_ONLY = ['403', '429']

let dir: string
let served: Served

beforeAll(async () => {
  process.env.SPECSERVE_ADMIN_TOKEN = TOKEN
  dir = mkdtempSync(join(tmpdir(), 'specserve-openapi-statuses-'))
  const path = join(root, 'models', 'cancer_logreg.onnx')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false, keep_versions: 20, max_model_bytes: ${model.length + 100} }
models:
  canaried:
    kind: onnx
    source: repository
    path: ${path}
    rollout: { canary: { weight: 0.5, promote_after: 1000 } }
  plain: { kind: onnx, source: repository, path: ${path} }
ensembles:
  cancer: { strategy: deadline-fallback, models: [canaried, plain] }
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
})
afterAll(async () => {
  delete process.env.SPECSERVE_ADMIN_TOKEN
  await served.stop()
  rmSync(dir, { recursive: true, force: true })
})

async function declared(method: string, path: string): Promise<string[]> {
  const doc = (await served.app.inject('/openapi.json')).json<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>()
  return Object.keys(doc.paths[path]![method]!.responses).sort()
}

const upload = async (name: string, version: string, body: Buffer = model, headers: Record<string, string> = auth): Promise<string> =>
  String((await served.app.inject({ method: 'PUT', url: `/v1/models/${name}/versions/${version}`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: body })).statusCode)
const rollback = async (name: string, headers: Record<string, string> = auth): Promise<string> =>
  String((await served.app.inject({ method: 'POST', url: `/v1/models/${name}/rollback`, headers })).statusCode)

describe('the registry routes answer only statuses /openapi.json declares, and it declares each one', () => {
  it('PUT /v1/models/{name}/versions/{version} and POST /v1/models/{name}/rollback', async () => {
    const uploads = [
      ['a canary starts', await upload('canaried', '2'), '202'],
      ['serving', await upload('plain', '5'), '201'],
      ['older: kept aside as a rollback target', await upload('plain', '3'), '200'],
      ['older too', await upload('plain', '4'), '200'],
      ['a version it has', await upload('plain', '5'), '409'],
      ['not a version', await upload('plain', 'x'), '400'],
      ['no such model', await upload('nope', '2'), '404'],
      ['not ONNX: rejected', await upload('plain', '6', Buffer.from('not a model')), '422'],
      ['over max_model_bytes', await upload('plain', '7', Buffer.alloc(model.length + 200)), '413'],
      ['no admin token', await upload('plain', '8', model, {}), '401'],
    ]
    const rollbacks = [
      ['to the previous passing version', await rollback('plain'), '200'],
      ['during a canary: the canary is rolled back', await rollback('canaried'), '200'],
      ['none older than the serving one', await rollback('canaried'), '409'],
      ['no such model', await rollback('nope'), '404'],
      ['no admin token', await rollback('plain', {}), '401'],
    ]
    // Serving 4 now; its previous, 3, no longer loads.
    writeFileSync(join(dir, 'repo', 'plain', '3', 'model.onnx'), 'damaged')
    rollbacks.push(['the previous version no longer loads', await rollback('plain'), '422'])
    served.gateway.drain() // as at SIGTERM, before the listener closes
    uploads.push(['while draining', await upload('plain', '9'), '503'])
    rollbacks.push(['while draining', await rollback('plain'), '503'])

    for (const [what, seen, expected] of [...uploads, ...rollbacks]) expect(seen, what).toBe(expected)
    const seenOf = (cases: string[][]): string[] => [...new Set([...cases.map(([, seen]) => seen!), ...GUARD_ONLY])].sort()
    expect(await declared('put', '/v1/models/{name}/versions/{version}')).toEqual(seenOf(uploads))
    expect(await declared('post', '/v1/models/{name}/rollback')).toEqual(seenOf(rollbacks))
  })
})
