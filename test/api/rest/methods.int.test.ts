// A path the REST API serves, asked with a method it does not serve there, is 405
// METHOD_NOT_ALLOWED with an Allow header, in the error shape of the API asked; a path no route
// has stays 404 NOT_FOUND. Neither reads the body. /openapi.json declares 405 on exactly the
// operations a request can get it on (a path parameter that a client resolves away).
import { createHash } from 'node:crypto'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { isErrorCode } from '../../../src/errors.ts'
import { configFrom } from '../../helpers.ts'
import { serveLoaded, type ServedApp } from '../../served-app.ts'
import '../../starter/scripted.ts'

const KEY = 'methods-key'
const yaml = `
models:
  m: { kind: scripted }
ensembles:
  e: { strategy: deadline-fallback, models: [m] }
admin: { reload_endpoint: true, watch_config: false }
`
const guardedYaml = `${yaml}
auth:
  api_keys: [ { id: k, sha256: "${createHash('sha256').update(KEY).digest('hex')}", scopes: [read] } ]
`

let served: ServedApp
let app: FastifyInstance
beforeAll(async () => {
  served = await serveLoaded(configFrom(yaml))
  app = served.app
})
afterAll(async () => served?.close())

type Answer = Awaited<ReturnType<FastifyInstance['inject']>>
const send = (method: string, url: string, extra: InjectOptions = {}): Promise<Answer> => app.inject({ method: method as 'GET', url, ...extra })

/** 405 with `allow`, the body in the native `{code, message}` shape (the V2 `{error, code}` one under /v2). */
function expect405(res: Answer, allow: string, shape: 'native' | 'oip' = 'native'): void {
  expect(res.statusCode, res.body).toBe(405)
  expect(res.headers.allow).toBe(allow)
  if (res.body === '') return // HEAD
  const body = res.json<Record<string, string>>()
  expect(Object.keys(body).sort()).toEqual(shape === 'native' ? ['code', 'message'] : ['code', 'error'])
  expect(body.code).toBe('METHOD_NOT_ALLOWED')
  expect(isErrorCode(body.code!)).toBe(true)
  expect(shape === 'native' ? body.message : body.error).toMatch(new RegExp(`^method [A-Z]+ is not allowed on ".*": it takes ${allow}$`))
}

describe('a method a served path does not take: 405 METHOD_NOT_ALLOWED with Allow', () => {
  it.each([
    ['DELETE', '/v1/ensembles/e/predict', 'POST'],
    ['GET', '/v1/ensembles/e/predict', 'POST'],
    ['PUT', '/v1/ensembles/e/predict?x=1', 'POST'],
    ['POST', '/v1/ensembles/e', 'GET, HEAD'],
    ['PATCH', '/v1/models/m', 'GET, HEAD'],
    ['DELETE', '/v1/ensembles', 'GET, HEAD'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['PROPFIND', '/readyz', 'GET, HEAD'],
    ['POST', '/openapi.json', 'GET, HEAD'],
    ['PUT', '/metrics', 'GET, HEAD'],
    // The admin route.
    ['GET', '/admin/reload', 'POST'],
    ['DELETE', '/admin/reload', 'POST'],
  ])('%s %s → Allow: %s, in the native shape', async (method, url, allow) => {
    expect405(await send(method, url), allow)
  })

  it.each([
    ['DELETE', '/v2/models/e/infer', 'POST'],
    ['GET', '/v2/models/e/versions/1/infer', 'POST'],
    ['POST', '/v2/models/e', 'GET, HEAD'],
    ['PUT', '/v2/models/e/ready', 'GET, HEAD'],
    ['POST', '/v2/health/live', 'GET, HEAD'],
    ['DELETE', '/v2', 'GET, HEAD'],
    ['DELETE', '/v2/', 'GET, HEAD'],
  ])('%s %s (Open Inference Protocol) → Allow: %s, in the V2 shape', async (method, url, allow) => {
    expect405(await send(method, url), allow, 'oip')
  })

  it('HEAD: on a GET route fastify answers it as GET does (kept); on a POST route it is 405, without a body', async () => {
    const head = await send('HEAD', '/v1/ensembles/e')
    expect(head.statusCode).toBe(200)
    const predict = await send('HEAD', '/v1/ensembles/e/predict')
    expect405(predict, 'POST')
    expect(predict.body).toBe('')
  })

  it('OPTIONS: 405 too, with the Allow header (no CORS preflight is served)', async () => {
    expect405(await send('OPTIONS', '/v1/ensembles/e/predict'), 'POST')
    expect405(await send('OPTIONS', '/v2/models/e'), 'GET, HEAD', 'oip')
  })

  it('is answered before the body is read: not JSON, compressed or a content type no route reads changes nothing', async () => {
    expect405(await send('PUT', '/v1/ensembles/e', { headers: { 'content-type': 'application/json' }, payload: '{"not json' }), 'GET, HEAD')
    expect405(await send('PUT', '/v1/ensembles/e', { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: 'x' }), 'GET, HEAD')
    expect405(await send('PATCH', '/v2/models/e/infer', { headers: { 'content-type': 'text/plain' }, payload: 'x' }), 'POST', 'oip')
    // QUERY, which fastify refuses 400 without a content-type before any route runs.
    expect405(await send('QUERY', '/v1/models'), 'GET, HEAD')
  })

  it('a path parameter "." that the client resolves away can take a request to a path served with other methods', async () => {
    // As curl, browsers, fetch and inject send it: POST /v1/ensembles/predict, where GET /v1/ensembles/{name} is.
    expect405(await send('POST', '/v1/ensembles/./predict', { headers: { 'content-type': 'application/json' }, payload: '{}' }), 'GET, HEAD')
    expect405(await send('POST', '/v2/models/./infer', { headers: { 'content-type': 'application/json' }, payload: '{}' }), 'GET, HEAD', 'oip')
  })
})

describe('a path no route has: 404 NOT_FOUND, whatever the method', () => {
  it.each([
    ['GET', '/v1/nothing', 'native'],
    ['DELETE', '/v1/ensembles/e/predict/more', 'native'],
    ['POST', '/nothing', 'native'],
    ['GET', '/v1/models/m/versions', 'native'], // the registry's routes: only with a repository
    ['GET', '/v2/nothing', 'oip'],
    ['DELETE', '/v2/models/e/nothing', 'oip'],
    ['OPTIONS', `/v1/ensembles/${'a'.repeat(150)}/predict`, 'native'], // a segment the router never matches
  ] as const)('%s %s', async (method, url, shape) => {
    const res = await send(method, url, { headers: { 'content-type': 'application/json' }, payload: method === 'GET' ? undefined : '{"not json' })
    expect(res.statusCode, res.body).toBe(404)
    expect(res.headers.allow).toBeUndefined()
    expect(res.json()).toEqual(shape === 'native' ? { code: 'NOT_FOUND', message: expect.stringMatching(/^no route /) } : { error: expect.stringMatching(/^no route /), code: 'NOT_FOUND' })
  })
})

describe('on the path of a request a route serves', () => {
  it('nothing is looked up: the route table is read on a miss only', async () => {
    const lookups = vi.spyOn(app, 'methodsAt')
    try {
      const predict = await send('POST', '/v1/ensembles/e/predict', { headers: { 'content-type': 'application/json' }, payload: { inputs: { x: [[0.5, 0.5]] } } })
      expect(predict.statusCode).toBe(200)
      expect((await send('GET', '/v1/ensembles/e')).statusCode).toBe(200)
      expect(lookups).not.toHaveBeenCalled()
      expect405(await send('GET', '/v1/ensembles/e/predict'), 'POST')
      expect(lookups).toHaveBeenCalledTimes(1)
    } finally {
      lookups.mockRestore()
    }
  })
})

describe('/openapi.json', () => {
  interface Operation {
    responses: Record<string, unknown>
  }
  const SPELLINGS = ['x', '.', '..']

  it('declares 405 on exactly the operations one of whose path parameters, spelled "." or "..", gets a 405', async () => {
    const doc = (await send('GET', '/openapi.json')).json<{ paths: Record<string, Record<string, Operation>> }>()
    const declared: string[] = []
    const seen: string[] = []
    for (const [path, ops] of Object.entries(doc.paths)) {
      const params = path.match(/\{\w+\}/g) ?? []
      for (const [method, op] of Object.entries(ops)) {
        const route = `${method.toUpperCase()} ${path}`
        if ('405' in op.responses) declared.push(route)
        for (let n = 1; n < SPELLINGS.length ** params.length; n++) {
          let url = path
          params.forEach((param, i) => (url = url.replace(param, SPELLINGS[Math.floor(n / SPELLINGS.length ** i) % SPELLINGS.length]!)))
          if ((await send(method.toUpperCase(), url)).statusCode === 405 && !seen.includes(route)) seen.push(route)
        }
      }
    }
    expect(declared.sort()).toEqual(seen.sort())
    expect(declared).toEqual(expect.arrayContaining(['POST /v1/ensembles/{name}/predict', 'POST /v2/models/{name}/infer', 'POST /v2/models/{name}/versions/{version}/infer']))
  })
})

describe('a guarded gateway', () => {
  let guarded: ServedApp
  beforeAll(async () => {
    guarded = await serveLoaded(configFrom(guardedYaml))
  })
  afterAll(async () => guarded?.close())

  it('answers 405 only to a caller with valid credentials: others get 401, as for a path no route has', async () => {
    const ask = (headers: Record<string, string>): Promise<Answer> => guarded.app.inject({ method: 'DELETE', url: '/v1/ensembles/e/predict', headers })
    expect((await ask({})).statusCode).toBe(401)
    expect((await ask({ authorization: 'Bearer nope' })).statusCode).toBe(401)
    // A key without the scope the POST needs: the method is refused, whatever the scope.
    expect405(await ask({ authorization: `Bearer ${KEY}` }), 'POST')
    expect((await guarded.app.inject({ url: '/v1/nothing', headers: { authorization: `Bearer ${KEY}` } })).statusCode).toBe(404)
  })
})
