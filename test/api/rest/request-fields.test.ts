// The request fields every frontend reads the same way: the request id (an empty one is
// replaced; a non-string one, one over 1 KiB, with a control character or a lone surrogate
// refused, on the native and the V2 bodies alike), the budget (decimal numbers only; the
// smaller of body and header, each within the cap), input names (one named like an
// Object.prototype member is an input like any other), the order the fields are read in, and
// the text itself (a body that is not UTF-8, or sent compressed; a BYTES element no UTF-8 can
// carry).
import { gzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readPredict } from '../../../src/api/native/request.ts'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
import '../../starter/scripted.ts'

let app: FastifyInstance
beforeAll(async () => {
  app = buildServer(
    configFrom(`models:
  m: { kind: scripted }
  c: { kind: scripted, input: { name: constructor, datatype: FP32, shape: [-1, 2] } }
  t: { kind: scripted, input: { name: text, datatype: BYTES, shape: [-1] } }
ensembles:
  e: { strategy: deadline-fallback, models: [m] }
  odd: { strategy: deadline-fallback, models: [c] }
  words: { strategy: deadline-fallback, models: [t] }
`),
  )
  await app.gateway.load()
})
afterAll(async () => app.close())

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const native = (body: object, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: { inputs: { x: [[0.5, 0.5]] }, ...body }, headers })
const v2 = (body: object, model = 'e', input = 'x') =>
  app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: { inputs: [{ name: input, datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }], ...body } })

describe('the request id', () => {
  it('an empty id is replaced by a UUID on the native API, as on V2 and gRPC', async () => {
    const res = await native({ id: '' })
    expect(res.statusCode).toBe(200)
    expect(res.json().id).toMatch(UUID)
    expect((await v2({ id: '' })).json().id).toMatch(UUID)
  })

  it('an empty id falls back to x-request-id, and a given one is echoed', async () => {
    expect((await native({ id: '' }, { 'x-request-id': 'from-header' })).json().id).toBe('from-header')
    expect((await native({ id: 'given' })).json().id).toBe('given')
    expect((await v2({ id: 'given' })).json().id).toBe('given')
  })

  it('an id that is not a string is 400 BAD_REQUEST on both bodies', async () => {
    const res = await native({ id: 5 })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ code: 'BAD_REQUEST', message: 'id must be a string, got 5' })
    const oip = await v2({ id: { nested: true } })
    expect(oip.statusCode).toBe(400)
    expect(oip.json()).toEqual({ code: 'BAD_REQUEST', error: 'id must be a string, got {"nested":true}' })
  })

  it('an id over 1024 bytes of UTF-8 is 400 BAD_REQUEST: the body\'s, x-request-id\'s and the V2 body\'s', async () => {
    const message = 'is 1025 bytes of UTF-8, over the 1024 a request id may have'
    const long = `${'é'.repeat(512)}x` // 513 characters, 1025 bytes
    expect((await native({ id: long })).json()).toEqual({ code: 'BAD_REQUEST', message: `id ${message}` })
    const header = await native({}, { 'x-request-id': 'h'.repeat(1025) })
    expect([header.statusCode, header.json()]).toEqual([400, { code: 'BAD_REQUEST', message: `x-request-id ${message}` }])
    const oip = await v2({ id: 'v'.repeat(20_000) })
    expect([oip.statusCode, oip.json()]).toEqual([400, { code: 'BAD_REQUEST', error: 'id is 20000 bytes of UTF-8, over the 1024 a request id may have' }])
    expect((await native({ id: long.slice(0, -1) })).json().id).toBe(long.slice(0, -1)) // 1024 bytes: served
  })

  it('an id with a control character is 400 BAD_REQUEST (ids go into logs and trailers)', async () => {
    for (const id of ['a\nb', 'tab\there', '\u001b[31mred', '\u009b']) {
      const res = await native({ id })
      expect(res.statusCode).toBe(400)
      expect(res.json().message).toMatch(/^id must not contain control characters, got /)
    }
    expect((await v2({ id: 'a\rb' })).statusCode).toBe(400)
  })

  it('an id holding a lone surrogate (no UTF-8 can carry it) is 400 BAD_REQUEST on both bodies', async () => {
    const message = 'id must be text (Unicode scalar values), got a lone surrogate'
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: '{"id":"a\\ud800","inputs":{"x":[[0.5,0.5]]}}', headers: { 'content-type': 'application/json' } })
    expect([res.statusCode, res.json()]).toEqual([400, { code: 'BAD_REQUEST', message }])
    const oip = await v2({ id: 'b\udfff' })
    expect([oip.statusCode, oip.json()]).toEqual([400, { code: 'BAD_REQUEST', error: message }])
    expect((await native({ id: 'pair \ud83d\ude00' })).json().id).toBe('pair 😀') // a surrogate pair is text
  })

  it('an x-request-id holding characters past U+00FF was not read from bytes (a proxy decoded it): taken as it is', async () => {
    expect((await native({}, { 'x-request-id': 'order-€-7' })).json().id).toBe('order-€-7')
  })

  it('stream mode reads its messages with the same readPredict, so refuses the same ids (its dead letter carries BAD_REQUEST)', () => {
    const read = () => readPredict(app.gateway, 'e', { inputs: { x: [[0.5, 0.5]] }, id: 'k'.repeat(2000) })
    expect(read).toThrow(expect.objectContaining({ code: 'BAD_REQUEST', message: 'id is 2000 bytes of UTF-8, over the 1024 a request id may have' }))
  })
})

describe('an input named like an Object.prototype member', () => {
  it('is served on the native and V2 APIs, not taken as given twice or as missing', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/odd/predict', payload: '{"inputs":{"constructor":[[0.5,0.5]]}}', headers: { 'content-type': 'application/json' } })
    expect(res.statusCode).toBe(200)
    expect((await v2({}, 'odd', 'constructor')).statusCode).toBe(200)
  })

  it('when not given, is missing', async () => {
    const res = await v2({ inputs: [] }, 'odd')
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'BAD_INPUT', error: 'missing input "constructor" (FP32 [-1, 2])' })
  })
})

describe('the budget', () => {
  it.each(['0x10', 'Infinity', '1e400', '1_000', '0b11'])('x-budget-ms %s is 400 BAD_BUDGET: decimal numbers only', async (header) => {
    const res = await native({}, { 'x-budget-ms': header })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ code: 'BAD_BUDGET', message: `x-budget-ms must be a decimal number of milliseconds, got "${header}"` })
  })

  it('x-budget-ms takes decimal numbers, a fraction or an exponent included', async () => {
    for (const [header, budget] of [['25', 25], [' 12.5 ', 12.5], ['2.5e1', 25]] as const) {
      expect((await native({}, { 'x-budget-ms': header })).json().budget_ms).toBe(budget)
    }
  })

  it('with both budget_ms and x-budget-ms, the budget is the smaller, as gRPC takes the smaller of budget_ms and the deadline', async () => {
    expect((await native({ budget_ms: 100 }, { 'x-budget-ms': '10' })).json().budget_ms).toBe(10)
    expect((await native({ budget_ms: 10 }, { 'x-budget-ms': '100' })).json().budget_ms).toBe(10)
    const payload = { parameters: { budget_ms: 100 }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }] }
    const oip = await app.inject({ method: 'POST', url: '/v2/models/e/infer', payload, headers: { 'x-budget-ms': '20' } })
    expect(oip.json().parameters.budget_ms).toBe(20)
  })

  it('with both, either one over the cap is 400 BAD_BUDGET, as gRPC refuses a budget_ms over it whatever the deadline', async () => {
    const body = await native({ budget_ms: 1e9 }, { 'x-budget-ms': '10' })
    expect([body.statusCode, body.json()]).toEqual([400, { code: 'BAD_BUDGET', message: "budget_ms 1000000000 is over this ensemble's cap of 1000 ms" }])
    const header = await native({ budget_ms: 10 }, { 'x-budget-ms': '5000' })
    expect([header.statusCode, header.json()]).toEqual([400, { code: 'BAD_BUDGET', message: "x-budget-ms 5000 is over this ensemble's cap of 1000 ms" }])
    const payload = { parameters: { budget_ms: 2000 }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }] }
    const oip = await app.inject({ method: 'POST', url: '/v2/models/e/infer', payload, headers: { 'x-budget-ms': '20' } })
    expect([oip.statusCode, oip.json()]).toEqual([400, { code: 'BAD_BUDGET', error: "parameter budget_ms 2000 is over this ensemble's cap of 1000 ms" }])
    expect((await native({ budget_ms: 1000 }, { 'x-budget-ms': '1000' })).json().budget_ms).toBe(1000) // at the cap: served
  })

  it('an x-budget-ms that is not a decimal number is 400 BAD_BUDGET even beside a valid budget_ms', async () => {
    const res = await native({ budget_ms: 100 }, { 'x-budget-ms': 'abc' })
    expect([res.statusCode, res.json()]).toEqual([400, { code: 'BAD_BUDGET', message: 'x-budget-ms must be a decimal number of milliseconds, got "abc"' }])
    // The smaller, 0, is the budget: not a positive number, so refused as a body's 0 would be.
    expect((await native({ budget_ms: 100 }, { 'x-budget-ms': '0' })).json().code).toBe('BAD_BUDGET')
  })

  it('an x-budget-ms that is not positive or over the cap is refused under its own name, alone or beside budget_ms', async () => {
    const refused = async (body: object, header: string) => (await native(body, { 'x-budget-ms': header })).json()
    expect(await refused({}, '0')).toEqual({ code: 'BAD_BUDGET', message: 'x-budget-ms must be a positive number of milliseconds, got "0"' })
    expect(await refused({ budget_ms: 5 }, '-1')).toEqual({ code: 'BAD_BUDGET', message: 'x-budget-ms must be a positive number of milliseconds, got "-1"' })
    expect(await refused({}, '1001')).toEqual({ code: 'BAD_BUDGET', message: "x-budget-ms 1001 is over this ensemble's cap of 1000 ms" })
  })

  it('a budget_ms of 1e400 (Infinity once parsed) is refused saying so, on both bodies', async () => {
    const body = (await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: '{"budget_ms":1e400,"inputs":{"x":[[0.5,0.5]]}}', headers: { 'content-type': 'application/json' } })).json()
    expect(body).toEqual({ code: 'BAD_BUDGET', message: 'budget_ms must be a finite number, got Infinity' })
    const payload = '{"parameters":{"budget_ms":1e400},"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[0.5,0.5]}]}'
    const oip = (await app.inject({ method: 'POST', url: '/v2/models/e/infer', payload, headers: { 'content-type': 'application/json' } })).json()
    expect(oip).toEqual({ code: 'BAD_BUDGET', error: 'parameter budget_ms must be a finite number, got Infinity' })
  })

  it('a budget_ms of 0 or less is named as the field it came in: budget_ms, or the V2 parameter budget_ms', async () => {
    const native = (await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: { budget_ms: -5, inputs: { x: [[0.5, 0.5]] } } })).json()
    expect(native).toEqual({ code: 'BAD_BUDGET', message: 'budget_ms must be a positive number of milliseconds, got -5' })
    const payload = { parameters: { budget_ms: 0 }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }] }
    const oip = (await app.inject({ method: 'POST', url: '/v2/models/e/infer', payload })).json()
    expect(oip).toEqual({ code: 'BAD_BUDGET', error: 'parameter budget_ms must be a positive number of milliseconds, got 0' })
  })

  it('a budget_ms over the cap is named as the field it came in, without a header too', async () => {
    const native = (await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: { budget_ms: 5000, inputs: { x: [[0.5, 0.5]] } } })).json()
    expect(native).toEqual({ code: 'BAD_BUDGET', message: "budget_ms 5000 is over this ensemble's cap of 1000 ms" })
    const payload = { parameters: { budget_ms: 5000 }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }] }
    const oip = (await app.inject({ method: 'POST', url: '/v2/models/e/infer', payload })).json()
    expect(oip).toEqual({ code: 'BAD_BUDGET', error: "parameter budget_ms 5000 is over this ensemble's cap of 1000 ms" })
  })
})

describe('the order fields are read in', () => {
  it('an unknown ensemble is 404 whatever else is wrong with the request, on both APIs', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/nope/predict', payload: { id: 'a\nb', inputs: {} } })
    expect([res.statusCode, res.json().code]).toEqual([404, 'UNKNOWN_ENSEMBLE'])
    const oip = await v2({ id: 'a\nb' }, 'nope')
    expect([oip.statusCode, oip.json().code]).toEqual([404, 'UNKNOWN_ENSEMBLE'])
  })

  it('a bad id is BAD_REQUEST before a bad input is BAD_INPUT, on both APIs (as over gRPC)', async () => {
    expect((await native({ id: 'a\nb', inputs: { y: [[1]] } })).json().code).toBe('BAD_REQUEST')
    expect((await v2({ id: 'a\nb', inputs: [{ name: 'y', datatype: 'FP32', shape: [1], data: [1] }] })).json().code).toBe('BAD_REQUEST')
  })

  it('missing or empty inputs are BAD_INPUT before a bad budget is BAD_BUDGET, on both APIs (as over gRPC)', async () => {
    const missing = await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: { inputs: {}, budget_ms: 'x' } })
    expect([missing.statusCode, missing.json().code]).toEqual([400, 'BAD_INPUT'])
    const empty = await native({ inputs: { x: { shape: [0, 2], data: [] } } }, { 'x-budget-ms': 'abc' })
    expect([empty.statusCode, empty.json().code]).toEqual([400, 'BAD_INPUT'])
    for (const budget_ms of ['x', -1]) {
      const oip = await app.inject({ method: 'POST', url: '/v2/models/e/infer', payload: { inputs: [], parameters: { budget_ms } }, headers: { 'x-budget-ms': 'abc' } })
      expect([oip.statusCode, oip.json().code]).toEqual([400, 'BAD_INPUT'])
    }
  })
})

describe('the text of a request', () => {
  it('a JSON body whose bytes are not UTF-8 is 400 BAD_REQUEST, not read with U+FFFD in their place', async () => {
    const message = 'body is not valid JSON: its bytes are not UTF-8'
    const bytes = (json: string) => Buffer.from(json.replace('@', '\u0000'), 'utf8').map((b) => (b === 0 ? 0xff : b))
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/words/predict', payload: Buffer.from(bytes('{"inputs":{"text":["caf@"]}}')), headers: { 'content-type': 'application/json' } })
    expect([res.statusCode, res.json()]).toEqual([400, { code: 'BAD_REQUEST', message }])
    const oip = await app.inject({ method: 'POST', url: '/v2/models/words/infer', payload: Buffer.from(bytes('{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["caf@"]}]}')), headers: { 'content-type': 'application/json' } })
    expect([oip.statusCode, oip.json()]).toEqual([400, { code: 'BAD_REQUEST', error: message }])
    const ok = await app.inject({ method: 'POST', url: '/v1/ensembles/words/predict', payload: Buffer.from('{"inputs":{"text":["café"]}}'), headers: { 'content-type': 'application/json' } })
    expect(ok.statusCode).toBe(200)
  })

  it('a JSON body sent with a content-encoding (gzip, br) is 415 UNSUPPORTED_ENCODING, not read as JSON; identity is read', async () => {
    const json = (text: string, encoding: string) => ({ payload: gzipSync(text), headers: { 'content-type': 'application/json', 'content-encoding': encoding } })
    const message = (encoding: string) => `content-encoding "${encoding}" is not supported: send the body uncompressed (no content-encoding, or identity)`
    for (const encoding of ['gzip', 'br', 'gzip, identity']) {
      const res = await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', ...json('{"inputs":{"x":[[0.5,0.5]]}}', encoding) })
      expect([res.statusCode, res.json()]).toEqual([415, { code: 'UNSUPPORTED_ENCODING', message: message(encoding) }])
    }
    for (const encoding of ['identity', ' Identity ', '']) {
      const res = await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: '{"inputs":{"x":[[0.5,0.5]]}}', headers: { 'content-type': 'application/json', 'content-encoding': encoding } })
      expect(res.statusCode, encoding).toBe(200)
    }
  })

  it('a BYTES element holding a lone surrogate is 400 BAD_INPUT on both APIs, not sent on as U+FFFD', async () => {
    const message = 'input "text": BYTES element 1 holds an unpaired surrogate: not text UTF-8 can carry'
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/words/predict', payload: '{"inputs":{"text":["ok","\\ud800"]}}', headers: { 'content-type': 'application/json' } })
    expect([res.statusCode, res.json()]).toEqual([400, { code: 'BAD_INPUT', message }])
    const oip = await v2({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['ok', '\udc00'] }] }, 'words')
    expect([oip.statusCode, oip.json()]).toEqual([400, { code: 'BAD_INPUT', error: message }])
  })

  it('a dimension written as a string must be decimal digits, as proto3 JSON writes an int64', async () => {
    const explicit = (shape: unknown[]) => native({ inputs: { x: { datatype: 'FP32', shape, data: [0.5, 0.5] } } })
    expect((await explicit(['1', '2'])).statusCode).toBe(200)
    for (const shape of [['0x1', '0x2'], [' 1 ', '2'], ['1', '2e0'], ['', '1', '2']]) {
      const res = await explicit(shape)
      expect([res.statusCode, res.json().code]).toEqual([400, 'BAD_INPUT'])
    }
    const oip = await v2({ inputs: [{ name: 'x', datatype: 'FP32', shape: ['0x1', '2'], data: [0.5, 0.5] }] })
    expect([oip.statusCode, oip.json().code]).toEqual([400, 'BAD_INPUT'])
  })
})
