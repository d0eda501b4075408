// TensorFlow Serving's REST API (and MLServer's) writes INT64 elements as bare JSON numbers,
// which JSON.parse rounds past ±(2^53 - 1): the gateway reads them from their digits, so an
// answer of large ids arrives exact, in NaN-bearing answers too. A real node:http server
// plays TF Serving.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom } from '../../helpers.ts'

const METADATA = {
  model_spec: { name: 'm', version: '1' },
  metadata: {
    signature_def: {
      signature_def: {
        serving_default: {
          inputs: { x: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }, { size: '2' }] } } },
          outputs: {
            ids: { dtype: 'DT_INT64', tensor_shape: { dim: [{ size: '-1' }] } },
            score: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '-1' }] } },
          },
        },
      },
    },
  },
}

let server: Server
let url: string
let answer = ''

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(req.method === 'GET' ? JSON.stringify(METADATA) : answer)
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

const inputs = { x: { datatype: 'FP32' as const, shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) } }

async function predict(): Promise<{ ids: bigint[]; score: number[] }> {
  const gateway = new Gateway(configFrom(`models:\n  m: { kind: tfserving, url: "${url}", model: m }\nensembles:\n  e: { strategy: deadline-fallback, models: [m], budget_ms: { default: 2000, max: 5000 } }\n`))
  try {
    await gateway.load()
    const result = await gateway.predict({ id: 'r', ensemble: 'e', inputs })
    expect(result.error).toBeNull()
    return { ids: [...(result.outputs!.ids!.data as BigInt64Array)], score: [...(result.outputs!.score!.data as Float32Array)] }
  } finally {
    await gateway.close()
  }
}

describe('TF Serving REST answers with INT64 beyond 2^53', () => {
  it('reads them exactly, bare numbers as TF Serving writes them', async () => {
    answer = '{"outputs": {"ids": [9223372036854775807, -9007199254740993], "score": [0.5, 1e20]}}'
    expect(await predict()).toEqual({ ids: [9223372036854775807n, -9007199254740993n], score: [0.5, Math.fround(1e20)] }) // 1e20: an integer-valued number, written as one: a float
  })

  it('reads them exactly beside bare NaN', async () => {
    answer = '{"outputs": {"ids": [1234567890123456789, 7], "score": [NaN, 2]}}'
    expect(await predict()).toEqual({ ids: [1234567890123456789n, 7n], score: [NaN, 2] })
  })
})
