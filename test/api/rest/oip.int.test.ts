import { gzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, samples } from '../../helpers.ts'
import { TEST_CONFIG } from '../grpc/harness.ts'

let app: FastifyInstance
const cancer = samples('cancer')
const tensor = (row: readonly number[]) => ({ name: 'input', datatype: 'FP32', shape: [1, 30], data: row })
const infer = (model: string, body: unknown, headers: Record<string, string | number> = {}) =>
  app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })

beforeAll(async () => {
  app = buildServer(configFrom(TEST_CONFIG.replace('server: {', 'server: { body_limit_bytes: 32768,')))
})
afterAll(async () => app.close())

describe('Open Inference Protocol V2 over REST', () => {
  it('is live at once and ready once loaded, by status code as the spec says', async () => {
    expect((await app.inject('/v2/health/live')).statusCode).toBe(200)
    expect((await app.inject('/v2/health/ready')).statusCode).toBe(400)
    const loading = await app.inject('/v2/models/cancer/ready')
    expect([loading.statusCode, loading.json()]).toEqual([400, { name: 'cancer', ready: false }])
    await app.gateway.load()
    expect((await app.inject('/v2/health/ready')).statusCode).toBe(200)
    const meta = await app.inject('/v2')
    expect(meta.json()).toMatchObject({ name: 'specserve', extensions: ['binary_tensor_data'] })
  })

  it('serves model metadata and readiness, with and without a version', async () => {
    for (const base of ['/v2/models/cancer', '/v2/models/cancer/versions/1']) {
      const meta = await app.inject(base)
      expect(meta.statusCode).toBe(200)
      expect(meta.json()).toMatchObject({ name: 'cancer', versions: ['1'], platform: 'specserve_ensemble', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 30] }] })
      expect((await app.inject(`${base}/ready`)).json()).toEqual({ name: 'cancer', ready: true })
    }
    for (const url of ['/v2/models/nope', '/v2/models/cancer/versions/7', '/v2/models/nope/ready']) {
      const res = await app.inject(url)
      expect(res.statusCode).toBe(404)
      expect(res.json()).toMatchObject({ error: expect.stringMatching(/no ensemble named "nope"|no version "7"/) })
    }
  })

  it('infers from JSON tensors; decision and annotations are response parameters', async () => {
    for (const [i, row] of cancer.rows.entries()) {
      const res = await infer('cancer', { id: `q${i}`, inputs: [tensor(row)] })
      expect(res.statusCode).toBe(200)
      const body = res.json() as { id: string; model_name: string; parameters: Record<string, unknown>; outputs: { name: string; shape: number[]; data: number[] }[] }
      expect(body).toMatchObject({ id: `q${i}`, model_name: 'cancer', model_version: '1' })
      const chosen = body.parameters.chosen as string
      expect(body.parameters).toMatchObject({ ensemble: 'cancer', strategy: 'deadline-fallback', reason: 'preferred-finished', budget_ms: 1000 })
      expect((JSON.parse(body.parameters.models as string) as { used: boolean; name: string }[]).find((m) => m.used)?.name).toBe(chosen)
      const label = body.outputs.find((o) => o.name === 'label')!
      expect(label).toMatchObject({ datatype: 'INT64', shape: [1] })
      expect(label.data[0]).toBe(cancer.expected[chosen.replace('-', '_')]![i])
    }
  })

  it('speaks the binary tensor data extension both ways', async () => {
    const rows = cancer.rows.slice(0, 2)
    const raw = Buffer.from(new Float32Array(rows.flat()).buffer)
    const header = Buffer.from(JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 30], parameters: { binary_data_size: raw.length } }],
      outputs: [{ name: 'label', parameters: { binary_data: true } }, { name: 'probabilities', parameters: { binary_data: false } }],
    }))
    const res = await infer('cancer', Buffer.concat([header, raw]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': header.length })
    expect(res.statusCode).toBe(200)
    const length = Number(res.headers['inference-header-content-length'])
    const body = JSON.parse(res.rawPayload.subarray(0, length).toString()) as { outputs: { name: string; parameters?: { binary_data_size: number }; data?: number[] }[] }
    const [label, probs] = body.outputs
    expect(label).toMatchObject({ name: 'label', datatype: 'INT64', shape: [2], parameters: { binary_data_size: 16 } })
    expect(probs!.data).toHaveLength(4)
    const labels = new BigInt64Array(res.rawPayload.subarray(length).buffer.slice(res.rawPayload.byteOffset + length, res.rawPayload.byteOffset + length + 16))
    expect(labels).toHaveLength(2)
    // binary_data_output asks for every output in binary.
    const all = await infer('cancer', { parameters: { binary_data_output: true }, inputs: [tensor(rows[0]!)] })
    expect(all.headers['content-type']).toBe('application/octet-stream')
    expect(all.rawPayload.length - Number(all.headers['inference-header-content-length'])).toBe(8 + 8)
  })

  it('reads inference-header-content-length as decimal digits only: hex, spaces, a fraction, an exponent or nothing is BAD_REQUEST', async () => {
    const header = Buffer.from(JSON.stringify({ inputs: [tensor(cancer.rows[0]!)] }))
    const body = Buffer.concat([header, Buffer.from('  ')])
    const send = (length: string) => infer('cancer', body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': length })
    const n = header.length
    for (const length of [`0x${n.toString(16)}`, ` ${n} `, `${n}.0`, `${n / 10}e1`, '', `+${n}`, `-0`]) {
      const res = await send(length)
      expect([res.statusCode, res.json()], JSON.stringify(length)).toEqual([400, { error: `inference-header-content-length must be a length in decimal digits, got ${JSON.stringify(length)}`, code: 'BAD_REQUEST' }])
    }
    const long = await send(String(body.length + 1))
    expect([long.statusCode, long.json()]).toEqual([400, { error: `inference-header-content-length "${body.length + 1}" does not fit a ${body.length}-byte body`, code: 'BAD_REQUEST' }])
    // The digits themselves: the JSON part, then two bytes of binary data no input claims.
    expect((await send(String(n))).json()).toEqual({ error: '2 bytes of binary data belong to no input', code: 'BAD_INPUT' })
  })

  it('answers errors in the spec shape {"error": ...} with the documented statuses', async () => {
    const row = cancer.rows[0]!
    const cases: [unknown, number, string, RegExp][] = [
      ['{not json', 400, 'BAD_REQUEST', /not valid JSON/],
      [[1, 2], 400, 'BAD_REQUEST', /must be a JSON object/],
      [{ inputs: [{ ...tensor(row), datatype: 'FP64' }] }, 400, 'BAD_INPUT', /datatype FP64 given, model declares FP32/],
      [{ inputs: [{ ...tensor(row), shape: [1, 29] }] }, 400, 'BAD_INPUT', /30 elements do not fill shape \[1, 29\]/],
      [{ inputs: [] }, 400, 'BAD_INPUT', /missing input "input"/],
      [{ inputs: [tensor(row)], parameters: { budget_ms: 99999 } }, 400, 'BAD_BUDGET', /over this ensemble's cap/],
      [{ inputs: [{ ...tensor([]), data: undefined, shape: [1, 30], parameters: { binary_data_size: 120 } }] }, 400, 'BAD_INPUT', /runs past the body's binary data/],
      [{ inputs: [{ ...tensor(row), parameters: { binary_data_size: 120 } }] }, 400, 'BAD_INPUT', /has both "data" and binary_data_size/],
    ]
    for (const [body, status, code, message] of cases) {
      const res = await infer('cancer', body)
      expect(res.statusCode).toBe(status)
      expect(res.json()).toEqual({ error: expect.stringMatching(message), code })
    }
    const unknown = await infer('nope', { inputs: [] })
    expect(unknown.statusCode).toBe(404)
    const big = await infer('cancer', { inputs: [tensor(new Array(30 * 300).fill(1.5))] })
    expect(big.statusCode).toBe(413)
    expect(big.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', error: expect.any(String) })
  })

  it('reads its JSON as the native API does: a byte order mark skipped, a key that could reach a prototype refused naming it, empty said so', async () => {
    const body = JSON.stringify({ inputs: [tensor(cancer.rows[0]!)] })
    expect((await infer('cancer', `\ufeff${body}`)).statusCode).toBe(200)
    for (const text of [`{"__proto__":{"x":1},${body.slice(1)}`, `{"parameters":{"\\u005f_proto__":{"budget_ms":1}},${body.slice(1)}`]) {
      const res = await infer('cancer', text)
      expect([res.statusCode, res.json()], text).toEqual([400, { error: 'body holds the key "__proto__", refused: it could reach an object\'s prototype', code: 'BAD_REQUEST' }])
    }
    // The JSON part of a body with binary data after it, alike.
    const empty = await infer('cancer', Buffer.from([1, 2, 3, 4]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': 0 })
    expect([empty.statusCode, empty.json()]).toEqual([400, { error: 'empty body: expected a JSON inference request', code: 'BAD_REQUEST' }])
  })

  it('refuses a body sent with a content-encoding (gzip) as 415 UNSUPPORTED_ENCODING, not reading its compressed bytes; identity is read', async () => {
    const body = JSON.stringify({ inputs: [tensor(cancer.rows[0]!)] })
    const gzipped = await infer('cancer', gzipSync(body), { 'content-encoding': 'gzip' })
    expect([gzipped.statusCode, gzipped.json()]).toEqual([415, { error: expect.stringMatching(/^content-encoding "gzip" is not supported/), code: 'UNSUPPORTED_ENCODING' }])
    expect((await infer('cancer', body, { 'content-encoding': 'identity' })).statusCode).toBe(200)
  })

  it('refuses a "parameters" that is not an object, of the request, an input or an output: BAD_REQUEST, not read as none', async () => {
    const row = cancer.rows[0]!
    const cases: [object, RegExp][] = [
      [{ inputs: [tensor(row)], parameters: 'x' }, /^parameters must be a JSON object of parameters, got "x"$/],
      [{ inputs: [tensor(row)], parameters: [1] }, /^parameters must be a JSON object of parameters, got \[1\]$/],
      [{ inputs: [tensor(row)], parameters: 5 }, /^parameters must be a JSON object/],
      [{ inputs: [{ ...tensor(row), parameters: 'zz' }] }, /^inputs\[0\]\.parameters must be a JSON object of parameters, got "zz"$/],
      [{ inputs: [tensor(row)], outputs: [{ name: 'label' }, { name: 'probabilities', parameters: [true] }] }, /^outputs\[1\]\.parameters must be/],
      // The body before the id, as every frontend reads a request.
      [{ id: 7, inputs: [tensor(row)], parameters: 'x' }, /^parameters must be/],
    ]
    for (const [body, message] of cases) {
      const res = await infer('cancer', body)
      expect([res.statusCode, res.json()]).toEqual([400, { error: expect.stringMatching(message), code: 'BAD_REQUEST' }])
    }
    // null is no parameters, as before; and an object is read.
    expect((await infer('cancer', { inputs: [{ ...tensor(row), parameters: null }], parameters: null, outputs: [{ name: 'label', parameters: null }] })).statusCode).toBe(200)
  })

  it('answers a failed infer with its status, and the annotations as parameters', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }
    const late = await infer('late', { inputs: [x] })
    expect(late.statusCode).toBe(504)
    const body = late.json() as { error: string; code: string; parameters: { models: string } }
    expect(body).toMatchObject({ error: 'no usable result by the deadline', code: 'DEADLINE_EXCEEDED', parameters: { ensemble: 'late', error_code: 'DEADLINE_EXCEEDED' } })
    expect(JSON.parse(body.parameters.models)).toMatchObject([{ name: 'hang', status: 'timeout' }])
    expect((await infer('broken', { inputs: [x] })).statusCode).toBe(502)
    expect((await infer('split', { inputs: [x] })).statusCode).toBe(422)
  })

  it('puts the request id in a failed infer\'s body, as every other frontend does: the one given, else the one generated', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }
    expect((await infer('broken', { id: 'f-1', inputs: [x] })).json()).toMatchObject({ code: 'ALL_MODELS_FAILED', id: 'f-1' })
    expect((await infer('broken', { inputs: [x] }, { 'x-request-id': 'from-header' })).json().id).toBe('from-header')
    expect((await infer('broken', { inputs: [x] })).json().id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  })
})
