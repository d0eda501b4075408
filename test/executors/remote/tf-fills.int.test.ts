// TF Serving over gRPC may answer a tensor as one value that fills its shape (half_val for
// FP16, bool_val for BOOL): the model's outputs are that value repeated, and the fills of one
// answer are bounded together by max_response_bytes, each counted as what it holds (2 bytes an
// FP16 element, 1 a BOOL), so several outputs cannot each expand up to the limit. A real gRPC
// server plays TF Serving.
import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Gateway } from '../../../src/gateway.ts'
import { service, TFSERVING_SERVICE } from '../../../src/proto/index.ts'
import type { PredictResult } from '../../../src/types.ts'
import { configFrom } from '../../helpers.ts'

/** -2.5 as an IEEE half: sign 1, exponent 10000, mantissa 0100000000. */
const MINUS_2_5_HALF = 0xc100

/** Each model's answer: `half` (FP16) and `flag` (BOOL), each one value filling [2, n]. */
const FILLS: Record<string, { half: number; flag: number }> = {
  pair: { half: 200, flag: 150 }, // 2 × 200 × 2 bytes + 2 × 150 × 1 byte = 1100 bytes held
  huge: { half: 500_000_000, flag: 1 }, // 2 GB of FP16 from a few bytes on the wire
}

const filled = (dtype: string, n: number, field: string, value: unknown) => ({ dtype, tensor_shape: { dim: [{ size: 2 }, { size: n }] }, [field]: [value] })

let server: grpc.Server
let url: string

beforeAll(async () => {
  server = new grpc.Server()
  server.addService(service(TFSERVING_SERVICE), {
    GetModelMetadata: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'no metadata' }),
    Predict: (call: grpc.ServerUnaryCall<{ model_spec: { name: string } }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const { half, flag } = FILLS[call.request.model_spec.name]!
      cb(null, { outputs: { half: filled('DT_HALF', half, 'half_val', MINUS_2_5_HALF), flag: filled('DT_BOOL', flag, 'bool_val', true) } })
    },
  })
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))))
  url = `grpc://127.0.0.1:${port}`
})

afterAll(() => server.forceShutdown())

/** One predict of a 2-row batch on a TF Serving model answering `model`'s fills, under `maxBytes`. */
async function predict(model: string, maxBytes?: number): Promise<PredictResult> {
  const limit = maxBytes === undefined ? '' : `max_response_bytes: ${maxBytes}, `
  const io = 'inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }], outputs: [{ name: half, datatype: FP16, shape: [-1, -1] }, { name: flag, datatype: BOOL, shape: [-1, -1] }]'
  const gateway = new Gateway(configFrom(`models:\n  m: { kind: tfserving, url: "${url}", model: ${model}, retries: 0, ${limit}${io} }\nensembles:\n  e: { strategy: deadline-fallback, models: [m], budget_ms: { default: 5000, max: 5000 } }\n`))
  try {
    await gateway.load()
    return await gateway.predict({ id: 'r', ensemble: 'e', inputs: { x: { datatype: 'FP32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) } } })
  } finally {
    await gateway.close()
  }
}

describe('TF Serving answers an FP16 and a BOOL tensor each as one value filling it', () => {
  it('the outputs are that value repeated while the fills fit max_response_bytes together; past it, alone (2 GB of FP16) or together (800 + 300 bytes over 1099), UPSTREAM_BAD_RESPONSE', async () => {
    const fits = await predict('pair', 1100)
    expect(fits.error).toBeNull()
    expect(fits.outputs!.half).toEqual({ datatype: 'FP16', shape: [2, 200], data: new Float16Array(400).fill(-2.5) })
    expect(fits.outputs!.flag).toEqual({ datatype: 'BOOL', shape: [2, 150], data: new Uint8Array(300).fill(1) })

    const refused = (message: RegExp) => ({ name: 'm', status: 'error', error: { code: 'UPSTREAM_BAD_RESPONSE', message: expect.stringMatching(message) as unknown } })
    const alone = await predict('huge')
    expect(alone.error?.code).toBe('ALL_MODELS_FAILED')
    expect(alone.models[0]).toMatchObject(refused(/output "half": one value fills shape \[2, 500000000\], more than max_response_bytes \(67108864\) would hold/))
    const together = await predict('pair', 1099)
    expect(together.error?.code).toBe('ALL_MODELS_FAILED')
    expect(together.models[0]).toMatchObject(refused(/output "(half|flag)": one value fills shape \[2, (200|150)\], more than max_response_bytes \(1099\) would hold with the answer's other fills/))
  })
})
