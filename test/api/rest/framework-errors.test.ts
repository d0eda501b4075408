// What fastify itself refuses (before or while routing, or parsing a body) answers in our
// error catalogue, in the shape of the API asked: `{code, message}` on /v1 and the rest,
// `{error, code}` on the Open Inference Protocol's /v2. Never fastify's own FST_ERR_ codes.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UNREAD_CONTENT_TYPE } from '../../../src/api/errors.ts'
import { buildServer } from '../../../src/api/rest/server.ts'
import { isErrorCode } from '../../../src/errors.ts'
import { configFrom } from '../../helpers.ts'
import '../../starter/scripted.ts'

let app: FastifyInstance
beforeAll(async () => {
  app = buildServer(
    configFrom(`server: { body_limit_bytes: 1024 }
models:
  m: { kind: scripted }
ensembles:
  e: { strategy: deadline-fallback, models: [m] }
`),
  )
  await app.gateway.load()
})
afterAll(async () => app.close())

const expectNative = (res: { statusCode: number; json(): unknown }, status: number, code: string): void => {
  expect(res.statusCode).toBe(status)
  const body = res.json() as Record<string, unknown>
  expect(Object.keys(body).sort()).toEqual(['code', 'message'])
  expect(body.code).toBe(code)
  expect(isErrorCode(body.code as string)).toBe(true)
}

describe("fastify's own refusals answer in our catalogue", () => {
  it('a URL that is not valid percent-encoding → 400 BAD_REQUEST, in each API\'s shape', async () => {
    const native = await app.inject({ method: 'GET', url: '/v1/ensembles/%E0%A4%A' })
    expectNative(native, 400, 'BAD_REQUEST')
    expect(native.json()).toEqual({ code: 'BAD_REQUEST', message: 'the URL is not valid percent-encoded UTF-8: "/v1/ensembles/%E0%A4%A"' })
    const oip = await app.inject({ method: 'POST', url: '/v2/models/%E0%A4%A/infer', payload: '{}', headers: { 'content-type': 'application/json' } })
    expect(oip.statusCode).toBe(400)
    expect(oip.json()).toEqual({ error: 'the URL is not valid percent-encoded UTF-8: "/v2/models/%E0%A4%A/infer"', code: 'BAD_REQUEST' })
  })

  it('a path segment over fastify\'s parameter length → 400 BAD_REQUEST, the URL quoted short', async () => {
    const res = await app.inject({ method: 'GET', url: `/v1/ensembles/${'n'.repeat(5000)}` })
    expectNative(res, 400, 'BAD_REQUEST')
    expect(res.body.length).toBeLessThan(300)
    const oip = await app.inject({ method: 'GET', url: `/v2/models/${'n'.repeat(5000)}` })
    expect(oip.statusCode).toBe(400)
    expect(Object.keys(oip.json() as object).sort()).toEqual(['code', 'error'])
  })

  it.each([
    ['a content type that is not JSON', 400, 'BAD_REQUEST', { payload: '{"inputs":{}}', headers: { 'content-type': 'text/csv' } }],
    ['an empty JSON body', 400, 'BAD_REQUEST', { payload: '', headers: { 'content-type': 'application/json' } }],
    ['a body that is not JSON', 400, 'BAD_REQUEST', { payload: '{"inputs":', headers: { 'content-type': 'application/json' } }],
    ['a body over body_limit_bytes', 413, 'PAYLOAD_TOO_LARGE', { payload: `{"pad":"${'x'.repeat(2000)}"}`, headers: { 'content-type': 'application/json' } }],
  ])('%s → %i %s', async (_what, status, code, request) => {
    expectNative(await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', ...request }), status, code)
  })

  it('a text/plain body → 400 BAD_REQUEST saying which content-types the routes read, as any other type they do not', async () => {
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'text/csv']) {
      const res = await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: '{"inputs":{}}', headers: { 'content-type': type } })
      expectNative(res, 400, 'BAD_REQUEST')
      expect(res.json().message, type).toBe(UNREAD_CONTENT_TYPE)
    }
  })

  it('a JSON body holding __proto__ (or constructor.prototype) → 400 BAD_REQUEST naming the key, not "not valid JSON"', async () => {
    const predict = (payload: string) => app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload, headers: { 'content-type': 'application/json' } })
    expect((await predict('{"inputs":{"__proto__":{"x":[1]}}}')).json()).toEqual({ code: 'BAD_REQUEST', message: 'body holds the key "__proto__", refused: it could reach an object\'s prototype' })
    expect((await predict('{"constructor":{"prototype":{}}}')).json()).toEqual({ code: 'BAD_REQUEST', message: 'body holds a key "constructor" holding "prototype", refused: it could reach an object\'s prototype' })
  })

  it('a V2 body over body_limit_bytes → 413 PAYLOAD_TOO_LARGE in the V2 shape', async () => {
    const res = await app.inject({ method: 'POST', url: '/v2/models/e/infer', payload: `{"pad":"${'x'.repeat(2000)}"}`, headers: { 'content-type': 'application/json' } })
    expect(res.statusCode).toBe(413)
    expect(Object.keys(res.json() as object).sort()).toEqual(['code', 'error'])
    expect(res.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' })
  })
})
