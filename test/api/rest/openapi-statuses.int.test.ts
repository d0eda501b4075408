// /openapi.json lists every route the server registers and every status a route can answer
// (docs/security.md): the registry's upload and rollback are driven through each outcome
// their code has, on a real repository, and the statuses seen are compared with those the
// document declares. 403 and 429 come only from the guard (an `auth` section): the guarded
// gateway below, and test/security/registry.int.test.ts.
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { loadConfigFile } from '../../../src/config/load.ts'
import { MAX_NAME_IN_PATH } from '../../../src/config/forms.ts'
import { Gateway } from '../../../src/gateway.ts'
import { silentLogger } from '../../../src/types.ts'
import { root } from '../../helpers.ts'
import { serveWithRegistry, type Served } from '../../registry/serve.ts'
import '../../starter/scripted.ts'
import { serveLoaded, type ServedApp } from '../../served-app.ts'

const TOKEN = 'openapi-statuses-admin'
const auth = { authorization: `Bearer ${TOKEN}` }
const model = readFileSync(join(root, 'models', 'cancer_logreg.onnx'))
const GUARD_ONLY = ['403', '429']
/**
 * Declared on every route, answered on every route by the listener or the error handlers, not
 * driven here: 408 and 431 (test/security/client-errors.int.test.ts), 500 INTERNAL (a bug;
 * openapi.int.test.ts drives a reload's), 503 NOT_READY once shutdown began (client-errors again).
 */
const ANY_ROUTE = ['408', '431', '500', '503']

let dir: string
let served: Served

beforeAll(async () => {
  process.env.SPECSERVE_ADMIN_TOKEN = TOKEN
  dir = mkdtempSync(join(tmpdir(), 'specserve-openapi-statuses-'))
  const path = join(root, 'models', 'cancer_logreg.onnx')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
server: { body_limit_bytes: 4096 }
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

interface Schema {
  required?: string[]
  anyOf?: Schema[]
}
interface Operation {
  parameters?: { name: string; in: string; schema: { maxLength?: number } }[]
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>
  security?: unknown[]
}
interface Document {
  security?: unknown[]
  paths: Record<string, Record<string, Operation>>
}

const documentOf = async (app: FastifyInstance, headers: Record<string, string> = {}): Promise<Document> => (await app.inject({ url: '/openapi.json', headers })).json<Document>()

async function declared(method: string, path: string): Promise<string[]> {
  const doc = await documentOf(served.app)
  return Object.keys(doc.paths[path]![method]!.responses).sort()
}

const LONG = 'a'.repeat(MAX_NAME_IN_PATH + 1)
const LONGEST = 'b'.repeat(MAX_NAME_IN_PATH)

/**
 * Every route the app registers, as `METHOD /path/{param}`, read from its route tree (HEAD
 * twins aside: the document leaves them out). Read from fastify itself, not from an onRoute
 * hook: a route added before @fastify/swagger loaded is in the tree but was never in the document.
 */
function registeredRoutes(app: FastifyInstance): string[] {
  const routes: string[] = []
  const prefixes: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const node = /^((?:[│ ] {3})*)[├└]── (\S+)(?: \(([^)]*)\))?$/.exec(line)
    if (!node) continue
    const depth = node[1]!.length / 4
    prefixes.length = depth
    const path = prefixes.join('') + node[2]!
    prefixes.push(node[2]!)
    for (const method of node[3]?.split(', ') ?? []) if (method !== 'HEAD') routes.push(`${method} ${path.replaceAll(/:(\w+)/g, '{$1}')}`)
  }
  return routes.sort()
}

const documentedRoutes = (doc: Document): string[] => Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`)).sort()

/** Whether a body has what the declared schema requires (for an anyOf, what one of them does): the native `{code, message}` or the V2 `{error}`. */
const fits = (body: unknown, schema: Schema): boolean =>
  schema.anyOf ? schema.anyOf.some((s) => fits(body, s)) : typeof body === 'object' && body !== null && (schema.required ?? []).every((key) => Object.hasOwn(body, key))

interface Case {
  /** The route, `METHOD /path/{param}` as the document names it. */
  readonly route: string
  readonly what: string
  readonly request: InjectOptions
  readonly expected: number
}

/**
 * Sends each case, then checks: each got the status it expects, a status the document
 * declares for its route, with a JSON body of the declared error shape. Returns (adds to
 * `seen`) the statuses seen, by route.
 */
async function drive(app: FastifyInstance, doc: Document, cases: readonly Case[], seen = new Map<string, Set<string>>()): Promise<Map<string, Set<string>>> {
  for (const { route, what, request, expected } of cases) {
    const res = await app.inject(request)
    const status = String(res.statusCode)
    const [method, path] = route.split(' ') as [string, string]
    const label = `${route}: ${what}`
    expect(res.statusCode, `${label}: ${res.body.slice(0, 200)}`).toBe(expected)
    const responses = doc.paths[path]?.[method.toLowerCase()]?.responses
    expect(responses, `${route} is not in the document`).toBeDefined()
    expect(Object.keys(responses!), `${label}: ${status} is not declared`).toContain(status)
    const schema = responses![status]!.content?.['application/json']?.schema
    if (res.statusCode >= 400 && schema) expect(fits(res.json(), schema), `${label}: ${res.body.slice(0, 200)} is not in the declared shape`).toBe(true)
    if (!seen.has(route)) seen.set(route, new Set())
    seen.get(route)!.add(status)
  }
  return seen
}

const upload = async (name: string, version: string, body: Buffer = model, headers: Record<string, string> = auth): Promise<string> =>
  String((await served.app.inject({ method: 'PUT', url: `/v1/models/${name}/versions/${version}`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: body })).statusCode)
const rollback = async (name: string, headers: Record<string, string> = auth, payload?: string): Promise<string> =>
  String((await served.app.inject({ method: 'POST', url: `/v1/models/${name}/rollback`, headers, payload })).statusCode)
const json = { ...auth, 'content-type': 'application/json' }

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
      [`a name over ${MAX_NAME_IN_PATH} characters`, await upload(LONG, '8'), '400'],
      [`a version over ${MAX_NAME_IN_PATH} characters`, await upload('plain', '9'.repeat(MAX_NAME_IN_PATH + 1)), '400'],
      ['sent compressed (content-encoding: gzip)', await upload('plain', '8', model, { ...auth, 'content-encoding': 'gzip' }), '415'],
      // Resolved by the client, as curl and fetch resolve it (inject too): PUT /v1/models/, where GET /v1/models/{name} is.
      ['a name "." and a version ".."', await upload('.', '..'), '405'],
    ]
    const rollbacks = [
      ['to the previous passing version', await rollback('plain'), '200'],
      ['during a canary: the canary is rolled back', await rollback('canaried'), '200'],
      ['none older than the serving one', await rollback('canaried'), '409'],
      ['no such model', await rollback('nope'), '404'],
      ['no admin token', await rollback('plain', {}), '401'],
      [`a name over ${MAX_NAME_IN_PATH} characters`, await rollback(LONG), '400'],
      ['a name that is not percent-encoded UTF-8', await rollback('%ff'), '400'],
      ['a body (none is needed) that is not JSON', await rollback('plain', json, 'nope'), '400'],
      ['a body over server.body_limit_bytes', await rollback('plain', json, JSON.stringify('x'.repeat(5000))), '413'],
      ['a body sent compressed (content-encoding: gzip)', await rollback('plain', { ...json, 'content-encoding': 'gzip' }, '{}'), '415'],
      // Resolved by the client: POST /v1/models/rollback, where GET /v1/models/{name} is.
      ['a name "."', await rollback('.'), '405'],
    ]
    // Serving 4 now; its previous, 3, no longer loads.
    writeFileSync(join(dir, 'repo', 'plain', '3', 'model.onnx'), 'damaged')
    rollbacks.push(['the previous version no longer loads', await rollback('plain'), '422'])
    served.gateway.drain() // as at SIGTERM, before the listener closes
    uploads.push(['while draining', await upload('plain', '9'), '503'])
    rollbacks.push(['while draining', await rollback('plain'), '503'])

    for (const [what, seen, expected] of [...uploads, ...rollbacks]) expect(seen, what).toBe(expected)
    const seenOf = (cases: string[][]): string[] => [...new Set([...cases.map(([, seen]) => seen!), ...GUARD_ONLY, ...ANY_ROUTE])].sort()
    expect(await declared('put', '/v1/models/{name}/versions/{version}')).toEqual(seenOf(uploads))
    expect(await declared('post', '/v1/models/{name}/rollback')).toEqual(seenOf(rollbacks))
  })
})

describe('the registry\'s read routes and the unguarded document', () => {
  it('every route the server registers is in /openapi.json, and only those', async () => {
    const doc = await documentOf(served.app)
    expect(doc.security).toBeUndefined()
    expect(registeredRoutes(served.app)).toContain('GET /v1/models/{name}/versions/{version}')
    expect(documentedRoutes(doc)).toEqual(registeredRoutes(served.app))
  })

  it('GET /v1/models/{name}/versions[/{version}] answer only what they declare', async () => {
    const doc = await documentOf(served.app)
    const versions = 'GET /v1/models/{name}/versions'
    const version = 'GET /v1/models/{name}/versions/{version}'
    await drive(served.app, doc, [
      { route: versions, what: 'a repository model', request: { url: '/v1/models/plain/versions' }, expected: 200 },
      { route: versions, what: `a name of ${MAX_NAME_IN_PATH} characters reaches the route`, request: { url: `/v1/models/${LONGEST}/versions` }, expected: 404 },
      { route: versions, what: `a name over ${MAX_NAME_IN_PATH} characters`, request: { url: `/v1/models/${LONG}/versions` }, expected: 400 },
      { route: versions, what: 'a name that is not percent-encoded UTF-8', request: { url: '/v1/models/%ff/versions' }, expected: 400 },
      { route: version, what: 'a version it has', request: { url: '/v1/models/plain/versions/1' }, expected: 200 },
      { route: version, what: 'not a version', request: { url: '/v1/models/plain/versions/x' }, expected: 400 },
      { route: version, what: 'no such version', request: { url: '/v1/models/plain/versions/99' }, expected: 404 },
      { route: version, what: `a name over ${MAX_NAME_IN_PATH} characters`, request: { url: `/v1/models/${LONG}/versions/1` }, expected: 400 },
    ])
  })
})

// A guarded gateway with every optional route (the reload endpoint, /metrics), keys for each
// refusal, and anonymous callers let through to the health routes (the default).
const ALL = 'openapi-all-key'
const NONE = 'openapi-no-scope-key'
const SPENT = 'openapi-spent-key'
const sha = (key: string): string => createHash('sha256').update(key).digest('hex')
const guardedYaml = (anonymous: string): string => `
server: { body_limit_bytes: 4096 }
models:
  ok: { kind: scripted, label: 1 }
ensembles:
  e: { strategy: deadline-fallback, models: [ok] }
admin: { reload_endpoint: true, watch_config: false }
auth:
  api_keys:
    - { id: all, sha256: "${sha(ALL)}", scopes: [read, metrics, admin, "predict:*"] }
    - { id: none, sha256: "${sha(NONE)}", scopes: [] }
    - { id: spent, sha256: "${sha(SPENT)}", scopes: [read, metrics, admin, "predict:*"], rate_limit: { rps: 0.001, burst: 1 } }
  anonymous: ${anonymous}
`

describe('a guarded gateway: /openapi.json against what each route answers', () => {
  let dir: string
  let guardedApp: ServedApp
  let gateway: Gateway
  let app: FastifyInstance
  const as = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'specserve-openapi-guarded-'))
    writeFileSync(join(dir, 'gateway.yaml'), guardedYaml('[health]'))
    guardedApp = await serveLoaded(loadConfigFile(join(dir, 'gateway.yaml')))
    ;({ app, gateway } = guardedApp)
  })
  afterAll(async () => {
    await guardedApp.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('every route the server registers is in /openapi.json, GET /openapi.json included, and only those', async () => {
    const doc = await documentOf(app, as(ALL))
    expect(registeredRoutes(app)).toEqual(expect.arrayContaining(['GET /openapi.json', 'GET /metrics', 'POST /admin/reload', 'GET /v2', 'GET /v2/', 'GET /v2/health/ready']))
    expect(documentedRoutes(doc)).toEqual(registeredRoutes(app))
    expect(Object.keys(doc.paths['/openapi.json']!.get!.responses).sort()).toEqual(['200', '401', '403', '429', ...ANY_ROUTE].sort())
  })

  it(`path parameters are at most ${MAX_NAME_IN_PATH} characters, and every route that takes one declares 400`, async () => {
    const doc = await documentOf(app, as(ALL))
    let params = 0
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const inPath = (op.parameters ?? []).filter((p) => p.in === 'path')
        expect(inPath.length, `${method} ${path}`).toBe(path.split('{').length - 1)
        for (const p of inPath) expect(p.schema.maxLength, `${method} ${path} {${p.name}}`).toBe(MAX_NAME_IN_PATH)
        if (inPath.length > 0) expect(Object.keys(op.responses), `${method} ${path}`).toContain('400')
        params += inPath.length
      }
    }
    expect(params).toBeGreaterThan(10)
  })

  it('declares bearer security, and none needed where auth.anonymous lets callers in: the health routes by default', async () => {
    const doc = await documentOf(app, as(ALL))
    expect(doc.security).toEqual([{ bearer: [] }])
    const optional = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => op.security !== undefined).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op.security]))
    expect(optional.sort()).toEqual(['GET /healthz', 'GET /readyz', 'GET /v2/health/live', 'GET /v2/health/ready'].map((route) => [route, [{}, { bearer: [] }]]))
  })

  it('answers only statuses the document declares, in the declared shape; the health routes each one they declare', async () => {
    const doc = await documentOf(app, as(ALL))
    // The spent key's one token goes here: from now on it is over its rate limit.
    expect((await app.inject({ url: '/healthz', headers: as(SPENT) })).statusCode).toBe(200)
    const health = ['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready'].flatMap((url): Case[] => [
      { route: `GET ${url}`, what: 'no credentials (auth.anonymous: [health])', request: { url }, expected: 200 },
      { route: `GET ${url}`, what: 'a key with no scope: every caller may check health', request: { url, headers: as(NONE) }, expected: 200 },
      { route: `GET ${url}`, what: 'a key the gateway does not know', request: { url, headers: as('nope') }, expected: 401 },
      { route: `GET ${url}`, what: 'not a bearer credential', request: { url, headers: { authorization: 'Basic eDp5' } }, expected: 401 },
      { route: `GET ${url}`, what: 'a key over its rate limit', request: { url, headers: as(SPENT) }, expected: 429 },
    ])
    const guarded = (route: string, url: string, ok: number): Case[] => [
      { route, what: 'a key with the scope', request: { url, headers: as(ALL) }, expected: ok },
      { route, what: 'no credentials', request: { url }, expected: 401 },
      { route, what: 'a key without the scope', request: { url, headers: as(NONE) }, expected: 403 },
      { route, what: 'a key over its rate limit', request: { url, headers: as(SPENT) }, expected: 429 },
    ]
    const infer = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }] }
    const predict = { inputs: { x: [[0.5, 0.5]] } }
    // Each route with a name (and a version) in the path, and a body for those that take one.
    const named: [route: string, url: (name: string, version?: string) => string, payload?: object][] = [
      ['GET /v1/ensembles/{name}', (n) => `/v1/ensembles/${n}`],
      ['POST /v1/ensembles/{name}/predict', (n) => `/v1/ensembles/${n}/predict`, predict],
      ['GET /v1/models/{name}', (n) => `/v1/models/${n}`],
      ['GET /v2/models/{name}', (n) => `/v2/models/${n}`],
      ['GET /v2/models/{name}/ready', (n) => `/v2/models/${n}/ready`],
      ['POST /v2/models/{name}/infer', (n) => `/v2/models/${n}/infer`, infer],
      ['GET /v2/models/{name}/versions/{version}', (n, v = '1') => `/v2/models/${n}/versions/${v}`],
      ['GET /v2/models/{name}/versions/{version}/ready', (n, v = '1') => `/v2/models/${n}/versions/${v}/ready`],
      ['POST /v2/models/{name}/versions/{version}/infer', (n, v = '1') => `/v2/models/${n}/versions/${v}/infer`, infer],
    ]
    const names = named.flatMap(([route, url, payload]): Case[] => {
      const request = (path: string): InjectOptions => ({ method: route.startsWith('POST') ? 'POST' : 'GET', url: path, headers: as(ALL), ...(payload && { payload }) })
      return [
        { route, what: 'a name it serves', request: request(url(route.includes('/v1/models/') ? 'ok' : 'e')), expected: 200 },
        { route, what: `a name of ${MAX_NAME_IN_PATH} characters reaches the route`, request: request(url(LONGEST)), expected: 404 },
        { route, what: `a name over ${MAX_NAME_IN_PATH} characters`, request: request(url(LONG)), expected: 400 },
        { route, what: 'a name that is not percent-encoded UTF-8', request: request(url('%ff')), expected: 400 },
        { route, what: 'the same, without credentials: refused before any route', request: { ...request(url('%ff')), headers: {} }, expected: 400 },
        ...(route.includes('{version}') ? [{ route, what: `a version over ${MAX_NAME_IN_PATH} characters`, request: request(url('e', LONG)), expected: 400 }] : []),
      ]
    })
    const seen = await drive(app, doc, [
      ...health,
      ...guarded('GET /openapi.json', '/openapi.json', 200),
      ...guarded('GET /metrics', '/metrics', 200),
      ...guarded('GET /v1/ensembles', '/v1/ensembles', 200),
      ...guarded('GET /v1/models', '/v1/models', 200),
      ...guarded('GET /v2/', '/v2/', 200),
      ...guarded('GET /v2', '/v2', 200),
      ...names,
      { route: 'POST /admin/reload', what: 'the file, unchanged', request: { method: 'POST', url: '/admin/reload', headers: as(ALL) }, expected: 200 },
      { route: 'POST /admin/reload', what: 'a body (none is needed) that is not JSON', request: { method: 'POST', url: '/admin/reload', headers: { ...as(ALL), 'content-type': 'application/json' }, payload: 'nope' }, expected: 400 },
      { route: 'POST /admin/reload', what: 'a body over server.body_limit_bytes', request: { method: 'POST', url: '/admin/reload', headers: { ...as(ALL), 'content-type': 'application/json' }, payload: 'x'.repeat(5000) }, expected: 413 },
      { route: 'POST /admin/reload', what: 'a body of a content-type no route reads', request: { method: 'POST', url: '/admin/reload', headers: { ...as(ALL), 'content-type': 'text/plain' }, payload: 'x' }, expected: 400 },
      { route: 'POST /admin/reload', what: 'a key without the scope', request: { method: 'POST', url: '/admin/reload', headers: as(NONE) }, expected: 403 },
    ])
    // While the gateway drains (as at SIGTERM): not ready, and a name not served is NOT_READY rather than unknown.
    gateway.drain()
    await drive(app, doc, [
      { route: 'GET /readyz', what: 'draining', request: { url: '/readyz' }, expected: 503 },
      { route: 'GET /v2/health/ready', what: 'draining', request: { url: '/v2/health/ready' }, expected: 400 },
      { route: 'GET /v1/ensembles/{name}', what: 'a name not served, while draining', request: { url: '/v1/ensembles/nope', headers: as(ALL) }, expected: 503 },
      { route: 'GET /v2/models/{name}', what: 'a name not served, while draining', request: { url: '/v2/models/nope', headers: as(ALL) }, expected: 503 },
      { route: 'GET /v2/models/{name}/versions/{version}', what: 'a name not served, while draining', request: { url: '/v2/models/nope/versions/1', headers: as(ALL) }, expected: 503 },
      { route: 'GET /v2/models/{name}/ready', what: 'a name it serves, while draining', request: { url: '/v2/models/e/ready', headers: as(ALL) }, expected: 400 },
    ], seen)
    for (const url of ['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready']) {
      expect([...new Set([...seen.get(`GET ${url}`)!, ...ANY_ROUTE])].sort(), url).toEqual(Object.keys(doc.paths[url]!.get!.responses).sort())
    }
  })
})

describe('a reload that changes auth.anonymous', () => {
  it('changes which operations the document says need no credentials', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'specserve-openapi-anonymous-'))
    const file = join(dir, 'gateway.yaml')
    writeFileSync(file, guardedYaml('[health]'))
    const config = loadConfigFile(file)
    const gateway = new Gateway(config)
    const app = buildServer(config, { gateway })
    try {
      await gateway.load()
      const open = async (): Promise<string[]> =>
        Object.entries((await documentOf(app, { authorization: `Bearer ${ALL}` })).paths)
          .flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => op.security?.some((s) => JSON.stringify(s) === '{}')).map(([method]) => `${method.toUpperCase()} ${path}`))
          .sort()
      const health = ['GET /healthz', 'GET /readyz', 'GET /v2/health/live', 'GET /v2/health/ready']
      expect(await open()).toEqual(health)
      writeFileSync(file, guardedYaml('[read]'))
      expect((await app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: `Bearer ${ALL}` } })).statusCode).toBe(200)
      expect(await open()).toEqual(['GET /openapi.json', 'GET /v1/ensembles', 'GET /v1/ensembles/{name}', 'GET /v1/models', 'GET /v1/models/{name}', 'GET /v2', 'GET /v2/', 'GET /v2/models/{name}', 'GET /v2/models/{name}/ready', 'GET /v2/models/{name}/versions/{version}', 'GET /v2/models/{name}/versions/{version}/ready'])
      // And as the document says: no credentials needed there now, and needed for health.
      expect((await app.inject('/v1/ensembles')).statusCode).toBe(200)
      expect((await app.inject('/healthz')).statusCode).toBe(401)
    } finally {
      await app.close()
      await gateway.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
