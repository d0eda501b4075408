// GET /openapi.json: an OpenAPI 3.1 document of every REST route, each with its schema
// from src/api/rest/schemas.ts (schemathesis loading it: test/security/fuzz-rest.e2e.test.ts).
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { demoConfig } from '../../helpers.ts'
import { serveLoaded, type ServedApp } from '../../served-app.ts'

let served: ServedApp
let app: FastifyInstance

beforeAll(async () => {
  served = await serveLoaded(demoConfig({ admin: { reload_endpoint: true } }))
  app = served.app
})
afterAll(async () => served.close())

interface BodySchema {
  required?: string[]
  properties?: Record<string, { additionalProperties?: { anyOf: object[] } }>
}
interface Operation {
  summary?: string
  requestBody?: { content: Record<string, { schema: BodySchema }> }
  parameters?: { name: string; in: string; schema?: { pattern?: string } }[]
  responses: Record<string, unknown>
}
type Response = { headers?: Record<string, unknown>; content: Record<string, { schema: { required?: string[]; type?: string; format?: string } }> }

describe('GET /openapi.json', () => {
  it('is OpenAPI 3.1 and lists the routes, each with its schema', async () => {
    const res = await app.inject('/openapi.json')
    expect(res.statusCode).toBe(200)
    const doc = res.json() as { openapi: string; paths: Record<string, Record<string, Operation>> }
    expect(doc.openapi).toBe('3.1.0')
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) expect(op.summary, `${method.toUpperCase()} ${path} has no schema in schemas.ts`).toBeTruthy()
    }
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/ensembles/{name}/predict', '/v1/ensembles', '/v1/models/{name}', '/metrics', '/admin/reload', '/healthz', '/v2/models/{name}/infer', '/v2/health/ready']),
    )
  })

  it('describes the predict body, its path parameter and its error statuses', async () => {
    const doc = (await app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, Operation>> }
    const predict = doc.paths['/v1/ensembles/{name}/predict']!.post!
    expect(predict.requestBody!.content['application/json']!.schema.required).toEqual(['inputs'])
    expect(predict.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'name', in: 'path' })]))
    // 405: a name "." that the client resolves away, to /v1/ensembles/predict, a GET path (src/api/rest/methods.ts).
    expect(Object.keys(predict.responses).sort()).toEqual(['200', '400', '401', '403', '404', '405', '408', '413', '415', '422', '429', '431', '500', '502', '503', '504'])
  })

  it('describes the V2 infer routes\' headers, and their application/octet-stream bodies both ways (the binary tensor data extension)', async () => {
    const doc = (await app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, Operation>> }
    for (const path of ['/v2/models/{name}/infer', '/v2/models/{name}/versions/{version}/infer']) {
      const infer = doc.paths[path]!.post!
      const headers = infer.parameters!.filter((p) => p.in === 'header')
      expect(headers.map((h) => h.name).sort(), path).toEqual(['inference-header-content-length', 'x-budget-ms', 'x-request-id'])
      expect(headers.find((h) => h.name === 'inference-header-content-length')!.schema).toMatchObject({ type: 'string', pattern: '^[0-9]+$' })
      expect(Object.keys(infer.requestBody!.content).sort()).toEqual(['application/json', 'application/octet-stream'])
      expect(infer.requestBody!.content['application/octet-stream']!.schema).toMatchObject({ type: 'string', format: 'binary' })
      const ok = infer.responses['200'] as Response
      expect(Object.keys(ok.content).sort()).toEqual(['application/json', 'application/octet-stream'])
      expect(Object.keys(ok.headers!)).toEqual(['inference-header-content-length'])
    }
    // And the route answers octet-stream so, with the header it declares.
    const binary = await app.inject({ method: 'POST', url: '/v2/models/cancer/infer', payload: { parameters: { binary_data_output: true }, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 30], data: new Array<number>(30).fill(0.5) }] } })
    expect([binary.statusCode, binary.headers['content-type'], binary.headers['inference-header-content-length']]).toEqual([200, 'application/octet-stream', expect.stringMatching(/^[0-9]+$/)])
  })

  it('declares on every route what any route may answer: the listener\'s 408 and 431 as {code, message}, 500 INTERNAL and 503 NOT_READY in the API\'s shape', async () => {
    const doc = (await app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, Operation>> }
    let operations = 0
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const route = `${method.toUpperCase()} ${path}`
        const required = (status: string): string[] | undefined => (op.responses[status] as Response | undefined)?.content['application/json']?.schema.required
        expect(required('408'), route).toEqual(['code', 'message'])
        expect(required('431'), route).toEqual(['code', 'message'])
        const shape = path.startsWith('/v2') ? ['error'] : ['code', 'message']
        expect(required('500'), route).toEqual(shape)
        // GET /readyz declares its own 503: its readiness body, or the listener's refusal.
        if (route !== 'GET /readyz') expect(required('503'), route).toEqual(shape)
        else expect(op.responses['503'], route).toBeDefined()
        operations++
      }
    }
    expect(operations).toBeGreaterThan(15)
  })

  it('documents without validating: a body the schema would refuse still gets the handler\'s own code', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: 'nope' } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'BAD_INPUT', message: 'inputs must be an object of named tensors' })
  })

  it('declares a shape\'s dimensions as the decoder reads them: integers, or strings of decimal digits', async () => {
    const doc = (await app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, Operation>> }
    const bodyOf = (path: string): BodySchema => doc.paths[path]!.post!.requestBody!.content['application/json']!.schema
    const ajv = new Ajv2020({ strict: false })
    // The native body's explicit form ({shape, datatype, data}); its other form, nested arrays, takes anything.
    const explicit = ajv.compile(bodyOf('/v1/ensembles/{name}/predict').properties!.inputs!.additionalProperties!.anyOf[1]!)
    const v2 = ajv.compile(bodyOf('/v2/models/{name}/infer'))
    const data = new Array<number>(30).fill(0.5)
    const shapes: [shape: unknown[], accepted: boolean][] = [
      [[1, 30], true],
      [['1', '30'], true],
      [[1, '30'], true],
      [[1, '0x1e'], false],
      [[1, '3e1'], false],
      [[1, ' 30 '], false],
      [[1, 30.5], false],
      [['-1', '30'], false],
      [[-1, 30], false],
    ]
    for (const [shape, accepted] of shapes) {
      const native = await app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: { shape, datatype: 'FP32', data } } } })
      const tensor = { name: 'input', datatype: 'FP32', shape, data }
      const infer = await app.inject({ method: 'POST', url: '/v2/models/cancer/infer', payload: { inputs: [tensor] } })
      const seen = [explicit({ shape, datatype: 'FP32', data }), native.statusCode === 200, v2({ inputs: [tensor] }), infer.statusCode === 200]
      expect(seen, JSON.stringify(shape)).toEqual([accepted, accepted, accepted, accepted])
    }
  })

  it('declares GET /metrics as the Prometheus text it answers, not JSON; its refusals stay JSON', async () => {
    const doc = (await app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, Operation>> }
    const scrape = await app.inject('/metrics')
    expect(scrape.statusCode).toBe(200)
    const responses = doc.paths['/metrics']!.get!.responses as Record<string, { content: Record<string, { schema: { type?: string } }> }>
    expect(Object.keys(responses['200']!.content)).toEqual([scrape.headers['content-type']])
    expect(responses['200']!.content['text/plain']!.schema).toEqual({ type: 'string' })
    expect(Object.keys(responses['401']!.content)).toEqual(['application/json'])
  })

  it('declares the 500 INTERNAL of a reload that fails for a reason of the machine', async () => {
    const doc = (await app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, Operation>> }
    const io = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })
    const reload = vi.spyOn(served.gateway, 'reload').mockRejectedValueOnce(io)
    try {
      const res = await app.inject({ method: 'POST', url: '/admin/reload' })
      expect([res.statusCode, res.json().code]).toEqual([500, 'INTERNAL'])
      expect(Object.keys(doc.paths['/admin/reload']!.post!.responses)).toContain('500')
    } finally {
      reload.mockRestore()
    }
  })
})
