// Proto3 strings that are not UTF-8, through the real server: every method answers
// INVALID_ARGUMENT (specserve-code BAD_REQUEST) naming the field, as REST refuses a body
// that is not UTF-8, where the gateway read them with U+FFFD in their place (a Predict
// answered, its id altered; ModelMetadata and GetModel NOT_FOUND for a name never sent).
import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GATEWAY_SERVICE, INFERENCE_SERVICE, service, type Method } from '../../../src/proto/index.ts'
import { failure, startHarness, trailerCode, xInput, type Harness } from './harness.ts'

let h: Harness
const methods = { ...service(GATEWAY_SERVICE), ...service(INFERENCE_SERVICE) } as unknown as Record<string, Method>
const raw = (b: Buffer): Buffer => b

/** `request` of `method` encoded, with a byte 0xff (never in UTF-8) in place of the marker's first letter. */
function poisoned(method: string, request: object): Buffer {
  const bytes = Buffer.from(methods[method]!.requestSerialize(request))
  bytes[bytes.indexOf('QQQ')] = 0xff
  return bytes
}

function call(method: string, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    h.gatewayClient.makeUnaryRequest(methods[method]!.path, raw, raw, bytes, (err, res) => (err ? reject(err) : resolve(res!)))
  })
}

beforeAll(async () => {
  h = await startHarness()
})
afterAll(async () => h?.close())

const x = { name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 0.5] } }
const CASES: [string, string, object][] = [
  ['Predict', 'id', { id: 'QQQ', ensemble: 'fallback', inputs: xInput }],
  ['Predict', 'ensemble', { ensemble: 'QQQ', inputs: xInput }],
  ['Predict', 'an inputs key (input name)', { ensemble: 'fallback', inputs: { QQQ: xInput.x } }],
  ['Predict', "an input's datatype", { ensemble: 'fallback', inputs: { x: { ...xInput.x, datatype: 'QQQ' } } }],
  ['ModelInfer', 'id', { model_name: 'fallback', id: 'QQQ', inputs: [x] }],
  ['ModelInfer', 'model_name', { model_name: 'QQQ', inputs: [x] }],
  ['ModelInfer', 'model_version', { model_name: 'fallback', model_version: 'QQQ', inputs: [x] }],
  ['ModelInfer', "an input's name", { model_name: 'fallback', inputs: [{ ...x, name: 'QQQ' }] }],
  ['ModelInfer', "an output's name", { model_name: 'fallback', inputs: [x], outputs: [{ name: 'QQQ' }] }],
  ['ModelMetadata', 'name', { name: 'QQQ' }],
  ['ModelMetadata', 'version', { name: 'fallback', version: 'QQQ' }],
  ['ModelReady', 'name', { name: 'QQQ' }],
  ['GetEnsemble', 'name', { name: 'QQQ' }],
  ['GetModel', 'name', { name: 'QQQ' }],
]

describe('a proto3 string that is not UTF-8', () => {
  it.each(CASES)('%s, its %s not UTF-8: INVALID_ARGUMENT (BAD_REQUEST) naming it', async (method, field, request) => {
    const err = await failure(call(method, poisoned(method, request)))
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(trailerCode(err)).toBe('BAD_REQUEST')
    const escaped = field.replace(/[()]/g, '\\$&')
    expect(err.details).toMatch(new RegExp(`^request message does not decode: ${escaped} is not valid UTF-8 \\(at byte \\d+\\): proto3 strings are UTF-8$`))
  })

  it('is refused on a compressed Predict (grpc-js serves it, with the same codec)', async () => {
    const err = await failure(
      new Promise((resolve, reject) => {
        h.gatewayClient.makeUnaryRequest(methods.Predict!.path, raw, raw, poisoned('Predict', { id: 'QQQ', ensemble: 'fallback', inputs: xInput }), new grpc.Metadata(), { compression: 'gzip' } as grpc.CallOptions, (e, r) => (e ? reject(e) : resolve(r)))
      }),
    )
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(err.details).toMatch(/^request message does not decode: id is not valid UTF-8/)
  })

  it('is answered BAD_REQUEST on PredictStream and ModelStreamInfer, the stream going on', async () => {
    const stream = async (method: string, messages: Buffer[]): Promise<Buffer[]> => {
      const s = h.gatewayClient.makeBidiStreamRequest(methods[method]!.path, raw, raw)
      const replies: Buffer[] = []
      s.on('data', (b: Buffer) => replies.push(b))
      const ended = new Promise((resolve, reject) => s.on('end', resolve).on('error', reject))
      for (const m of messages) s.write(m)
      s.end()
      await ended
      return replies
    }
    const ok = Buffer.from(methods.Predict!.requestSerialize({ id: 'fine', ensemble: 'fallback', inputs: xInput }))
    const predicts = (await stream('PredictStream', [poisoned('Predict', { id: 'QQQ', ensemble: 'fallback', inputs: xInput }), ok])).map((b) => methods.PredictStream!.responseDeserialize(b) as { id: string; error?: { code: string; message: string } })
    expect(predicts.find((r) => r.error)).toMatchObject({ id: '', error: { code: 'BAD_REQUEST', message: expect.stringMatching(/^request message does not decode: id is not valid UTF-8/) } })
    expect(predicts.find((r) => !r.error)).toMatchObject({ id: 'fine' })

    const infers = (await stream('ModelStreamInfer', [poisoned('ModelInfer', { model_name: 'QQQ', inputs: [x] })])).map((b) => methods.ModelStreamInfer!.responseDeserialize(b) as { error_message: string })
    expect(infers).toEqual([expect.objectContaining({ error_message: expect.stringMatching(/^BAD_REQUEST: request message does not decode: model_name is not valid UTF-8/) })])
  })

  it('but U+FFFD sent as UTF-8 is a character like any other', async () => {
    const err = await failure(call('GetModel', Buffer.from(methods.GetModel!.requestSerialize({ name: 'a\ufffdb' }))))
    expect(err.code).toBe(grpc.status.NOT_FOUND)
  })
})
