// TensorFlow Serving's REST API writes non-finite floats as bare NaN / Infinity / -Infinity,
// which strict JSON refuses. A model answering them is a model answering, not a broken
// upstream: the values arrive as those numbers. It writes INT64 elements as bare numbers,
// which JSON.parse rounds past ±(2^53 - 1): they are read from their digits, exactly. A real
// node:http server plays TF Serving.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom } from '../../helpers.ts'

/** TF Serving's metadata answer for a serving_default signature with input x [-1, 2] and these outputs. */
const signature = (outputs: Record<string, object>): object => ({
  model_spec: { name: 'm', version: '1' },
  metadata: { signature_def: { signature_def: { serving_default: { inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }, { size: '2' }] } } }, outputs } } } },
})
const METADATA = signature({ y: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }, { size: '2' }] } } })
/** A classifier's signature: INT64 ids and FP32 scores. */
const INT64_METADATA = signature({ ids: { dtype: 'DT_INT64', tensor_shape: { dim: [{ size: '-1' }] } }, score: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }] } } })

let server: Server
let url: string
let metadata: object = METADATA
let answer = ''
let received = ''

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      if (req.method === 'POST') received = body
      res.setHeader('content-type', 'application/json')
      res.end(req.method === 'GET' ? JSON.stringify(metadata) : answer)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.close()
  await once(server, 'close')
})

const config = () =>
  configFrom(`models:\n  m: { kind: tfserving, url: "${url}", model: m }\nensembles:\n  e:\n    strategy: deadline-fallback\n    models: [m]\n    budget_ms: { default: 2000, max: 5000 }\n`)

const inputs = { x: { datatype: 'FP32' as const, shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) } }

describe('TF Serving REST answers with non-finite floats', () => {
  it('reads bare NaN, Infinity and -Infinity as those numbers', async () => {
    answer = '{"outputs": [[0.5, NaN], [Infinity, -Infinity]]}'
    const gateway = new Gateway(config())
    try {
      await gateway.load()
      const result = await gateway.predict({ id: 'r', ensemble: 'e', inputs })
      expect(result.error).toBeNull()
      expect(result.models[0]).toMatchObject({ name: 'm', status: 'ok' })
      expect([...(result.outputs!.y!.data as Float32Array)]).toEqual([0.5, NaN, Infinity, -Infinity])
    } finally {
      await gateway.close()
    }
  })

  it('still refuses an answer that is not JSON, NaN read or not', async () => {
    answer = '{"outputs": [[0.5, NaN], [Infinity, nope]]}'
    const gateway = new Gateway(config())
    try {
      await gateway.load()
      const result = await gateway.predict({ id: 'r', ensemble: 'e', inputs })
      expect(result.error?.code).toBe('ALL_MODELS_FAILED')
      expect(result.models[0]).toMatchObject({ name: 'm', status: 'error', error: { code: 'UPSTREAM_BAD_RESPONSE' } })
    } finally {
      await gateway.close()
    }
  })

  it('sends NaN and the infinities as the bare literals TF Serving reads (it refuses the strings for a float)', async () => {
    answer = '{"outputs": [[0.5, 0.5], [0.5, 0.5]]}'
    const gateway = new Gateway(config())
    try {
      await gateway.load()
      const nonFinite = { x: { datatype: 'FP32' as const, shape: [2, 2], data: Float32Array.of(Number.NaN, Infinity, -Infinity, 1.5) } }
      const result = await gateway.predict({ id: 'r', ensemble: 'e', inputs: nonFinite })
      expect(result.error).toBeNull()
      expect(received).toBe('{"signature_name":"serving_default","inputs":{"x":[[NaN,Infinity],[-Infinity,1.5]]}}')
    } finally {
      await gateway.close()
    }
  })
})

describe('TF Serving REST answers with INT64 beyond 2^53', () => {
  async function predictIds(): Promise<{ ids: bigint[]; score: number[] }> {
    metadata = INT64_METADATA
    const gateway = new Gateway(config())
    try {
      await gateway.load()
      const result = await gateway.predict({ id: 'r', ensemble: 'e', inputs })
      expect(result.error).toBeNull()
      return { ids: [...(result.outputs!.ids!.data as BigInt64Array)], score: [...(result.outputs!.score!.data as Float32Array)] }
    } finally {
      metadata = METADATA
      await gateway.close()
    }
  }

  it('reads them exactly, bare numbers as TF Serving writes them', async () => {
    answer = '{"outputs": {"ids": [9223372036854775807, -9007199254740993], "score": [0.5, 1e20]}}'
    // 1e20: an integer-valued number written as a float, read as one.
    expect(await predictIds()).toEqual({ ids: [9223372036854775807n, -9007199254740993n], score: [0.5, Math.fround(1e20)] })
  })

  it('reads them exactly beside bare NaN', async () => {
    answer = '{"outputs": {"ids": [1234567890123456789, 7], "score": [NaN, 2]}}'
    expect(await predictIds()).toEqual({ ids: [1234567890123456789n, 7n], score: [NaN, 2] })
  })
})
