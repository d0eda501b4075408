// What a client can send to the predict routes (native and V2) and what it gets back,
// through fastify's inject with scripted models: integer inputs are range-checked, hostile
// nesting and shapes get a short 400, and nothing a client sends produces a 5xx.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
import '../../starter/scripted.ts'

let app: FastifyInstance
beforeAll(async () => {
  app = buildServer(
    configFrom(`models:
  i8: { kind: scripted, input: { datatype: INT8, shape: [-1, 2] } }
  u8: { kind: scripted, input: { datatype: UINT8, shape: [-1, 2] } }
  i64: { kind: scripted, input: { datatype: INT64, shape: [-1, 2] } }
  text: { kind: scripted, input: { datatype: BYTES, shape: [-1] } }
ensembles:
  bytes: { strategy: deadline-fallback, models: [text] }
  int8: { strategy: deadline-fallback, models: [i8] }
  uint8: { strategy: deadline-fallback, models: [u8] }
  int64: { strategy: deadline-fallback, models: [i64] }
`),
  )
  await app.gateway.load()
})
afterAll(async () => app.close())

const predict = (ensemble: string, input: unknown) => app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { x: input } } })
const infer = (ensemble: string, datatype: string, data: unknown[]) =>
  app.inject({ method: 'POST', url: `/v2/models/${ensemble}/infer`, payload: { inputs: [{ name: 'x', datatype, shape: [1, 2], data }] } })

describe('integer inputs are range-checked, never wrapped', () => {
  it.each([
    ['int8', [[300, 1]], 'input "x": element 0 is 300, outside INT8 [-128, 127]'],
    ['int8', [[-129, 1]], 'input "x": element 0 is -129, outside INT8 [-128, 127]'],
    ['uint8', [[1, -1]], 'input "x": element 1 is -1, outside UINT8 [0, 255]'],
    ['int8', [[1.5, 1]], 'input "x": element 0 is 1.5, not an integer (INT8)'],
    ['int64', [[2 ** 60, 1]], 'input "x": element 0 is 1152921504606847000, beyond ±2^53: send 64-bit integers this large as decimal strings'],
  ])('native %s %j → 400 BAD_INPUT', async (ensemble, input, message) => {
    const res = await predict(ensemble, input)
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ code: 'BAD_INPUT', message })
  })

  it('the V2 routes apply the same rules', async () => {
    const res = await infer('int8', 'INT8', [300, 1])
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ code: 'BAD_INPUT', error: 'input "x": element 0 is 300, outside INT8 [-128, 127]' })
    expect((await infer('uint8', 'UINT8', [255, 0])).statusCode).toBe(200)
  })

  it('takes the ends of the range, and 64-bit integers beyond 2^53 as decimal strings', async () => {
    expect((await predict('int8', [[-128, 127]])).statusCode).toBe(200)
    expect((await predict('int64', [['9223372036854775807', '-9223372036854775808']])).statusCode).toBe(200)
  })
})

describe('hostile bodies get a short 4xx, never a 5xx', () => {
  const deep = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}`
  it.each([
    ['an array nested a million deep', `{"inputs":{"x":${deep(1_000_000)}}}`, 'input "x": arrays nested more than 64 deep'],
    ['a 5,000-dimension shape', JSON.stringify({ inputs: { x: { shape: new Array(5000).fill(1), data: [1] } } }), 'input "x": shape has 5000 dimensions, more than 64'],
    ['a shape of 1e9 elements with little data', JSON.stringify({ inputs: { x: { shape: [500_000_000, 2], data: [1, 2] } } }), 'input "x": 2 elements do not fill shape [500000000, 2]'],
    ['an input name of 100 KB', JSON.stringify({ inputs: { ['n'.repeat(100_000)]: [[1, 2]] } }), `unknown input "${'n'.repeat(64)}…" (ensemble "int8" takes: x)`],
  ])('%s → 400 BAD_INPUT', async (_what, payload, message) => {
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/int8/predict', payload, headers: { 'content-type': 'application/json' } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ code: 'BAD_INPUT', message })
  })

  it('the V2 JSON form refuses the same nesting', async () => {
    const payload = `{"inputs":[{"name":"x","datatype":"INT8","shape":[1,2],"data":${deep(1_000_000)}}]}`
    const res = await app.inject({ method: 'POST', url: '/v2/models/int8/infer', payload, headers: { 'content-type': 'application/json' } })
    expect(res.statusCode).toBe(400)
    expect(res.json().code).toBe('BAD_INPUT')
  })
})

describe('a value nested 10,000 deep where a number belongs gets 400, not a stack overflow', () => {
  const nest = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`
  const v2Input = '{"name":"x","datatype":"INT8","shape":[1,2],"data":[1,2]}'
  it.each([
    ['native budget_ms', '/v1/ensembles/int8/predict', `{"budget_ms":${nest(10_000)},"inputs":{"x":[[1,2]]}}`, 'BAD_BUDGET', 'budget_ms must be a number, got […]'],
    ['native shape dimension', '/v1/ensembles/int8/predict', `{"inputs":{"x":{"shape":[${nest(10_000)},2],"data":[1,2]}}}`, 'BAD_INPUT', 'input "x": shape must be non-negative integers, got [[…], 2]'],
    ['V2 parameters.budget_ms', '/v2/models/int8/infer', `{"parameters":{"budget_ms":${nest(10_000)}},"inputs":[${v2Input}]}`, 'BAD_BUDGET', 'parameter budget_ms must be a number, got […]'],
    ['V2 shape dimension', '/v2/models/int8/infer', `{"inputs":[{"name":"x","datatype":"INT8","shape":[${nest(10_000)},2],"data":[1,2]}]}`, 'BAD_INPUT', 'input "x": shape must be non-negative integers, got [[…], 2]'],
  ])('%s', async (_what, url, payload, code, message) => {
    const res = await app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } })
    expect(res.statusCode).toBe(400)
    const body = res.json()
    expect([body.code, body.message ?? body.error]).toEqual([code, message])
  })
})

describe('errors quote a client value briefly, never whole', () => {
  it('a V2 budget_ms parameter of 100 KB comes back as its first 40 characters', async () => {
    const payload = JSON.stringify({ parameters: { budget_ms: 'x'.repeat(100_000) }, inputs: [{ name: 'x', datatype: 'INT8', shape: [1, 2], data: [1, 2] }] })
    const res = await app.inject({ method: 'POST', url: '/v2/models/int8/infer', payload, headers: { 'content-type': 'application/json' } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ code: 'BAD_BUDGET', error: `parameter budget_ms must be a number, got "${'x'.repeat(39)}…` })
  })

  it('so does an inference-header-content-length header of 10 KB', async () => {
    const res = await app.inject({ method: 'POST', url: '/v2/models/int8/infer', payload: '{}', headers: { 'content-type': 'application/json', 'inference-header-content-length': '9'.repeat(10_000) } })
    expect(res.statusCode).toBe(400)
    expect(res.body.length).toBeLessThan(200)
  })
})

describe('BYTES inputs over the V2 binary extension', () => {
  const binaryInfer = (element: Buffer) => {
    const raw = Buffer.concat([Buffer.from(Uint32Array.of(element.length).buffer), element])
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: raw.length } }] }))
    return app.inject({ method: 'POST', url: '/v2/models/bytes/infer', payload: Buffer.concat([header, raw]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } })
  }

  it('refuses bytes that are not UTF-8 with 400 BAD_INPUT instead of altering them', async () => {
    const res = await binaryInfer(Buffer.from('89504e47ff00c3', 'hex'))
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ code: 'BAD_INPUT', error: 'input "x": BYTES element 0 is not valid UTF-8: BYTES elements must be UTF-8 text here' })
    expect((await binaryInfer(Buffer.from('text ü', 'utf8'))).statusCode).toBe(200)
  })
})

describe('the response body', () => {
  it('written as text, is the documented object (resultBody / failureBody), for answers and failures alike', async () => {
    const { resultBody, failureBody, resultJson } = await import('../../../src/api/native/result.ts')
    const ok = await app.gateway.predict({ id: 'a"b', ensemble: 'int8', inputs: { x: { datatype: 'INT8', shape: [1, 2], data: Int8Array.of(1, 2) } } })
    expect(JSON.parse(resultJson(ok))).toEqual(resultBody(ok))
    const failed = { ...ok, outputs: null, error: { code: 'DEADLINE_EXCEEDED', message: 'no usable result by the deadline' } }
    expect(JSON.parse(resultJson(failed))).toEqual(failureBody(failed))
    expect(Object.keys(JSON.parse(resultJson(failed)) as object)).toEqual(Object.keys(failureBody(failed)))
  })
})
