// Request ids over gRPC, through the real server with stock grpc-js clients: an id over
// 1 KiB (UTF-8) or with a control character is INVALID_ARGUMENT (BAD_REQUEST) on Predict,
// PredictStream and ModelInfer. Before, a 140 KB id on a failed predict was copied into the
// `specserve-result` trailer, which broke the client's HTTP/2 session: that call and every
// other call in flight on the channel failed with INTERNAL and no specserve-code. A stream's
// error reply echoes no id (nor V2 model name) over 1 KiB, and one still over
// grpc_max_send_bytes is sent as the error alone: either would otherwise end the whole call.
import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { signals } from '../../starter/scripted.ts'
import { failure, startHarness, TEST_CONFIG, trailerCode, trailerResult, unary, xInput, type Harness } from './harness.ts'

let h: Harness
const predict = (request: object) => unary(h.gatewayClient, 'Predict', request)
const infer = (request: object) => unary(h.inferenceClient, 'ModelInfer', request)
const x = { name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 0.5] } }

beforeAll(async () => {
  // Room for a 140 KB id in the request: the limit under test is the id's, not the message's.
  h = await startHarness(TEST_CONFIG.replace('grpc_max_receive_bytes: 65536', 'grpc_max_receive_bytes: 1048576'))
})
afterAll(async () => h?.close())

describe('a request id over 1 KiB', () => {
  it('on a failing predict is INVALID_ARGUMENT with specserve-code BAD_REQUEST, and a call in flight on the same channel still succeeds', async () => {
    signals.clear()
    // The slow preferred model (600 ms) keeps this call open while the other one is refused.
    const bystander = predict({ id: 'bystander', ensemble: 'fallback', budget_ms: 1000, inputs: xInput })
    await vi.waitFor(() => expect(signals.get('slow')).toHaveLength(1))
    const err = await failure(predict({ id: 'q'.repeat(140_000), ensemble: 'broken', inputs: xInput }))
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(trailerCode(err)).toBe('BAD_REQUEST')
    expect(err.details).toBe('id is 140000 bytes of UTF-8, over the 1024 a request id may have')
    await expect(bystander).resolves.toMatchObject({ id: 'bystander', ensemble: 'fallback' })
  })

  it('is refused on ModelInfer and on each PredictStream message too', async () => {
    const err = await failure(infer({ model_name: 'broken', id: 'i'.repeat(20_000), inputs: [x] }))
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(trailerCode(err)).toBe('BAD_REQUEST')

    const call = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, { id: string; error?: { code: string } }>)(new grpc.Metadata())
    const replies: { id: string; error?: { code: string } }[] = []
    call.on('data', (r: { id: string; error?: { code: string } }) => replies.push(r))
    const ended = new Promise((resolve, reject) => call.on('end', resolve).on('error', reject))
    call.write({ id: 's'.repeat(2000), ensemble: 'broken', inputs: xInput })
    call.end()
    await ended
    expect(replies.map((r) => r.error?.code)).toEqual(['BAD_REQUEST'])
  })

  it('counts UTF-8 bytes: 1024 of them pass (and come back whole in the trailer), 1025 do not', async () => {
    const id = 'é'.repeat(512) // 512 characters, 1024 bytes
    const err = await failure(predict({ id, ensemble: 'broken', inputs: xInput }))
    expect(trailerCode(err)).toBe('ALL_MODELS_FAILED')
    expect(trailerResult(err).id).toBe(id)
    const over = await failure(predict({ id: `${id}x`, ensemble: 'broken', inputs: xInput }))
    expect(over.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(over.details).toBe('id is 1025 bytes of UTF-8, over the 1024 a request id may have')
  })

  it('an id with a control character is refused as well', async () => {
    const err = await failure(predict({ id: 'a\nb', ensemble: 'broken', inputs: xInput }))
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(err.details).toBe('id must not contain control characters, got "a\\nb"')
  })
})

describe('an error reply on a stream (grpc_max_send_bytes: 2048)', () => {
  let s: Harness
  beforeAll(async () => {
    s = await startHarness(TEST_CONFIG.replace('grpc_max_receive_bytes: 65536', 'grpc_max_receive_bytes: 1048576, grpc_max_send_bytes: 2048'))
  })
  afterAll(async () => s?.close())

  /** Opens `method`, writes `messages`, half-closes; resolves with the replies once the call ends OK (rejects if it ends otherwise). */
  async function streamed<R>(client: Harness['gatewayClient'], method: string, messages: object[]): Promise<R[]> {
    const call = (client[method] as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, R>)(new grpc.Metadata())
    const replies: R[] = []
    call.on('data', (r: R) => replies.push(r))
    const ended = new Promise((resolve, reject) => call.on('end', resolve).on('error', reject))
    for (const message of messages) call.write(message)
    call.end()
    await ended
    return replies
  }

  it('echoes no id over 1 KiB on PredictStream: such a message is answered BAD_REQUEST, and the predict sent before it still answered', async () => {
    // Echoed, the id would make the error reply past grpc_max_send_bytes: grpc-js would end the call, cancelling the other predict.
    const replies = await streamed<{ id: string; outcome: string; error?: { code: string } }>(s.gatewayClient, 'PredictStream', [
      { id: 'kept', ensemble: 'fallback', inputs: xInput },
      { id: 'q'.repeat(100_000), ensemble: 'fallback', inputs: xInput },
    ])
    expect(replies).toEqual([expect.objectContaining({ id: '', outcome: 'error', error: expect.objectContaining({ code: 'BAD_REQUEST' }) }), expect.objectContaining({ id: 'kept', outcome: 'response' })])
  })

  it('echoes no id or model name over 1 KiB on ModelStreamInfer, and sends an error reply still too large as the same error alone', async () => {
    type Reply = { error_message: string; infer_response: { id: string; model_name: string } | null }
    const x = { name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 0.5] } }
    const replies = await streamed<Reply>(s.inferenceClient, 'ModelStreamInfer', [
      { model_name: 'm'.repeat(100_000), id: 'i'.repeat(100_000), inputs: [x] },
      // Each 1024 bytes, echoed: with the message, the reply is past the 2048 bytes.
      { model_name: 'é'.repeat(512), id: 'é'.repeat(512), inputs: [x] },
      { model_name: 'fallback', id: 'kept', inputs: [x] },
    ])
    expect(replies).toHaveLength(3)
    expect(replies[0]).toMatchObject({ error_message: expect.stringMatching(/^UNKNOWN_ENSEMBLE: /), infer_response: null })
    // What failed stays said: the model is unknown (only the echoes are left out).
    expect(replies[1]).toMatchObject({ error_message: expect.stringMatching(/^UNKNOWN_ENSEMBLE: /), infer_response: null })
    expect(replies[2]).toMatchObject({ error_message: '', infer_response: { id: 'kept', model_name: 'fallback' } })
  })
})
