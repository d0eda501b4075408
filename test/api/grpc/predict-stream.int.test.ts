// specserve.v1.Gateway/PredictStream with a stock grpc-js client generated from the
// .proto: many predicts over one call, each answered by id as it is decided (a fast one
// overtakes a slow one sent before it), per-message errors that leave the stream open,
// the call ending once the client half-closes and all is answered, and a cancel that
// cancels the predicts still running; with a raw HTTP/2 client, what ends the whole call.
import * as grpc from '@grpc/grpc-js'
import { once } from 'node:events'
import { connect, constants } from 'node:http2'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { configFrom, samples } from '../../helpers.ts'
import { expectCancelStopsRuns, failure, startHarness, TEST_CONFIG, trailerCode, unary, xInput, type Harness } from './harness.ts'
import { AFTER_ANSWER, frame, messageOf, rawCall, statusOf, type Ending } from './raw-call.ts'

let h: Harness
const cancer = samples('cancer')

beforeAll(async () => {
  h = await startHarness()
})
afterAll(async () => h?.close())

interface Reply {
  id: string
  outcome: 'response' | 'error'
  response?: Record<string, unknown>
  error?: { code: string; message: string; status: number; result_json: string }
}

function openStream(options: grpc.CallOptions = {}): { call: grpc.ClientDuplexStream<object, Reply>; replies: Reply[]; ended: Promise<void> } {
  const call = (h.gatewayClient.PredictStream as (m: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientDuplexStream<object, Reply>)(new grpc.Metadata(), options)
  const replies: Reply[] = []
  call.on('data', (r: Reply) => replies.push(r))
  const ended = new Promise<void>((resolve, reject) => {
    call.on('end', resolve)
    call.on('error', reject)
  })
  return { call, replies, ended }
}

describe('specserve.v1.Gateway/PredictStream', () => {
  it('answers every message by id as it is decided, with what unary Predict answers', async () => {
    const { call, replies, ended } = openStream()
    // The slow preferred model (600 ms) holds "first" until its fallback at 400 ms; the cancer rows overtake it.
    call.write({ id: 'first', ensemble: 'fallback', budget_ms: 400, inputs: xInput })
    for (const [i, row] of cancer.rows.entries()) call.write({ id: `row-${i}`, ensemble: 'cancer', inputs: { input: { fp32_data: row, shape: [1, 30] } } })
    call.write({ ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } }) // no id: one is generated
    call.end()
    await ended
    expect(replies).toHaveLength(cancer.rows.length + 2)
    expect(replies.at(-1)!.id).toBe('first') // sent first, decided last
    expect(replies.every((r) => r.outcome === 'response')).toBe(true)
    for (const [i, row] of cancer.rows.entries()) {
      const streamed = replies.find((r) => r.id === `row-${i}`)!.response!
      const single = await unary(h.gatewayClient, 'Predict', { id: `row-${i}`, ensemble: 'cancer', inputs: { input: { fp32_data: row, shape: [1, 30] } } })
      expect(streamed.outputs).toEqual(single.outputs)
      expect(streamed.id).toBe(`row-${i}`)
    }
    const generated = replies.find((r) => !['first', ...cancer.rows.map((_, i) => `row-${i}`)].includes(r.id))!
    expect(generated.id).toMatch(/\S/)
    expect(generated.response!.id).toBe(generated.id)
  })

  it('answers a bad or failed message with its error and keeps the stream going', async () => {
    const { call, replies, ended } = openStream()
    call.write({ id: 'unknown', ensemble: 'nope', inputs: xInput })
    call.write({ id: 'bad-input', ensemble: 'cancer', inputs: { input: { fp32_data: [1, 2, 3], shape: [1, 3] } } })
    call.write({ id: 'bad-budget', ensemble: 'cancer', budget_ms: 1e9, inputs: { input: { fp32_data: cancer.rows[0] } } })
    call.write({ id: 'broken', ensemble: 'broken', inputs: xInput })
    call.write({ id: 'good', ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } })
    call.end()
    await ended
    const byId = new Map(replies.map((r) => [r.id, r]))
    expect(byId.size).toBe(5)
    expect(byId.get('unknown')!.error).toMatchObject({ code: 'UNKNOWN_ENSEMBLE', status: grpc.status.NOT_FOUND, result_json: '' })
    expect(byId.get('bad-input')!.error).toMatchObject({ code: 'BAD_INPUT', status: grpc.status.INVALID_ARGUMENT })
    expect(byId.get('bad-budget')!.error).toMatchObject({ code: 'BAD_BUDGET', status: grpc.status.INVALID_ARGUMENT })
    const broken = byId.get('broken')!.error!
    expect(broken).toMatchObject({ code: 'ALL_MODELS_FAILED', status: grpc.status.UNAVAILABLE })
    expect(JSON.parse(broken.result_json)).toMatchObject({ code: 'ALL_MODELS_FAILED', ensemble: 'broken', outputs: null })
    expect(byId.get('good')!.outcome).toBe('response')
  })

  it("gives each message its own budget (budget_ms, else the ensemble default) whatever the stream's deadline", async () => {
    // A stream open for a minute: its deadline is not a budget for each message.
    for (const deadline of [undefined, Date.now() + 60_000]) {
      const { call, replies, ended } = openStream(deadline ? { deadline } : {})
      call.write({ id: 'default', ensemble: 'fallback', inputs: xInput }) // default 100 ms: the slow model (600 ms) misses it, the fallback answers
      call.write({ id: 'own', ensemble: 'fallback', budget_ms: 1000, inputs: xInput }) // its own 1000 ms (the max): the slow model makes it
      call.end()
      await ended
      const byId = new Map(replies.map((r) => [r.id, r.response!]))
      expect(byId.get('default')).toMatchObject({ budget_ms: 100, decision: { chosen: 'fast' } })
      expect(byId.get('own')).toMatchObject({ budget_ms: 1000, decision: { chosen: 'slow' } })
    }
  })

  it("caps each message's budget by the stream's deadline", async () => {
    const { call, replies, ended } = openStream({ deadline: Date.now() + 900 })
    const row = { input: { fp32_data: cancer.rows[0] } }
    call.write({ id: 'own', ensemble: 'cancer', budget_ms: 2000, inputs: row })
    call.write({ id: 'default', ensemble: 'cancer', inputs: row }) // default 1000 ms
    call.end()
    await ended
    const byId = new Map(replies.map((r) => [r.id, r.response!]))
    expect(byId.get('own')!.budget_ms).toBeLessThan(900)
    expect(byId.get('default')!.budget_ms).toBeLessThan(900)
  })

  it('ends a stream whose deadline had passed when it arrived with DEADLINE_EXCEEDED and its stable code, as a unary call, running none of its messages', async () => {
    // A grpc-js client given a past deadline ends the call itself and never sees the server's
    // status; so the client sets no deadline and sends the header as one arrives whose deadline
    // ran out on the way: 0m (grpc-js writes a passed deadline so), or under a millisecond.
    const streams = [
      [h.gatewayClient, 'PredictStream', { id: 'late', ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } }],
      [h.inferenceClient, 'ModelStreamInfer', { id: 'late', model_name: 'cancer', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 30], contents: { fp32_contents: cancer.rows[0] } }] }],
    ] as const
    for (const [client, method, message] of streams) {
      for (const timeout of ['0m', '1n']) {
        const metadata = new grpc.Metadata()
        metadata.set('grpc-timeout', timeout)
        const call = client[method]!(metadata) as grpc.ClientDuplexStream<object, unknown>
        const replies: unknown[] = []
        call.on('data', (r: unknown) => replies.push(r))
        const ended = new Promise((resolve, reject) => {
          call.on('end', resolve)
          call.on('error', reject)
        })
        call.write(message)
        call.end()
        const err = await failure(ended)
        expect([err.code, err.details, trailerCode(err)]).toEqual([grpc.status.DEADLINE_EXCEEDED, 'the deadline had passed before the request arrived', 'DEADLINE_EXCEEDED'])
        expect(replies).toEqual([])
      }
    }
    expect(h.gateway.admission.count).toBe(0)
  })

  it('cancels the running predicts when the client cancels the call', async () => {
    const open = () => (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, unknown>)(new grpc.Metadata())
    await expectCancelStopsRuns(h, open, (call, id) => call.write({ id, ensemble: 'hanging', inputs: xInput }))
  })

  it.each([
    ['as started', false],
    ['after a reload that raises it (grpc-js keeps the limit it started with)', true],
  ])('answers a message whose answer is over grpc_max_send_bytes with RESPONSE_TOO_LARGE and keeps the stream going, %s', async (_, reload) => {
    const small = await startHarness(TEST_CONFIG.replace('grpc_max_receive_bytes: 65536', 'grpc_max_receive_bytes: 65536, grpc_max_send_bytes: 2048'))
    try {
      if (reload) await small.gateway.reload(configFrom(TEST_CONFIG.replace('grpc_max_receive_bytes: 65536', 'grpc_max_receive_bytes: 65536, grpc_max_send_bytes: 100000')))
      const call = (small.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, Reply>)(new grpc.Metadata())
      const replies: Reply[] = []
      call.on('data', (r: Reply) => replies.push(r))
      const ended = once(call, 'end')
      const rows = Array.from({ length: 300 }, (_, i) => cancer.rows[i % cancer.rows.length]!).flat()
      call.write({ ensemble: 'cancer', inputs: { input: { fp32_data: rows, shape: [300, 30] } } }) // ~2.7 KB of outputs; no id: one is generated
      call.write({ id: 'one', ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } })
      call.end()
      await ended
      expect(replies).toHaveLength(2)
      const big = replies.find((r) => r.id !== 'one')!
      expect(big.error).toMatchObject({ code: 'RESPONSE_TOO_LARGE', status: grpc.status.RESOURCE_EXHAUSTED })
      expect(big.error!.message).toContain('grpc_max_send_bytes (2048)')
      // It ran: its reply keeps the generated id and the annotations, without the outputs.
      expect(big.id).not.toBe('')
      expect(JSON.parse(big.error!.result_json)).toMatchObject({ id: big.id, code: 'RESPONSE_TOO_LARGE', outputs: null, models: [{ name: 'cancer-mlp', status: 'ok' }, { name: 'cancer-logreg' }] })
      expect(replies.find((r) => r.id === 'one')!.outcome).toBe('response')
    } finally {
      await small.close()
    }
  })

  it('answers a message that does not decode with an error and reads the next one', async () => {
    // A raw client: the first message's bytes are not a PredictRequest.
    const client = new grpc.Client(h.address, grpc.credentials.createInsecure())
    const call = client.makeBidiStreamRequest('/specserve.v1.Gateway/PredictStream', (b: Buffer) => b, (b: Buffer) => b)
    const replies: Buffer[] = []
    call.on('data', (b: Buffer) => replies.push(b))
    call.write(Buffer.from([0x0a, 0x05, 0x6e])) // ensemble: length 5, 1 byte given
    call.write(Buffer.from([0x0a, 0x06, ...Buffer.from('cancer'), 0x22, 0x02, ...Buffer.from('ok')])) // no inputs: BAD_INPUT, id "ok"
    call.end()
    await once(call, 'end')
    client.close()
    expect(replies).toHaveLength(2)
    expect(replies[0]!.toString('latin1')).toContain('BAD_REQUEST')
    expect(replies[1]!.toString('latin1')).toContain('ok')
  })
})

describe('specserve.v1.Gateway/PredictStream, a message that ends the call', () => {
  const PATH = '/specserve.v1.Gateway/PredictStream'
  const encode = (msg: object): Buffer => (h.gatewayClient.PredictStream as unknown as { requestSerialize: (m: object) => Buffer }).requestSerialize(msg)
  /** Never answered: the call is refused before any answer, whatever else it carries. */
  const held = (): Buffer => frame(encode({ id: 'held', ensemble: 'hanging', inputs: xInput }))
  const quick = (): Buffer => frame(encode({ id: 'quick', ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } }))
  // By default a client that neither half-closes nor cancels: only the server ends these calls.
  const open = async (chunks: Parameters<typeof rawCall>[2], extra: Record<string, string> = {}, ending: Ending = 'open') => {
    const session = connect(`http://${h.address}`)
    try {
      return await rawCall(session, PATH, chunks, extra, ending)
    } finally {
      session.close()
    }
  }

  it('over grpc_max_receive_bytes: RESOURCE_EXHAUSTED with its stable code (PAYLOAD_TOO_LARGE), and nothing left running', async () => {
    const prefix = Buffer.from([0, 0, 0, 0, 0])
    prefix.writeUInt32BE(70_000, 1) // over the harness's 65,536
    const refused = await open([held(), prefix])
    expect([statusOf(refused), messageOf(refused)]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'Received message larger than max (70000 vs 65536)'])
    expect(refused.headers['specserve-code']).toBe('PAYLOAD_TOO_LARGE')
    await vi.waitFor(() => expect(h.gateway.admission.count).toBe(0))
  })

  it('a compressed flag on a call without compression: INTERNAL before any answer, a reset after one (grpc-js would read the bytes as they are)', async () => {
    for (const flagged of [frame(encode({ id: 'f', ensemble: 'cancer', inputs: xInput }), 1), frame(gzipSync(encode({ id: 'f', ensemble: 'cancer', inputs: xInput })), 1)]) {
      const refused = await open([held(), flagged], {}, 'cancel')
      expect([statusOf(refused), messageOf(refused)]).toEqual([grpc.status.INTERNAL, expect.stringContaining('compressed flag 1')])
      expect(refused.body).toHaveLength(0)
    }
    // Answers are out: no status can come before grpc-js's, so the stream is reset (the client sees CANCELLED).
    const reset = await open([quick(), AFTER_ANSWER, frame(encode({ id: 'f' }), 1)])
    expect(reset.rstCode).toBe(constants.NGHTTP2_CANCEL)
    await vi.waitFor(() => expect(h.gateway.admission.count).toBe(0))
  })

  it('bytes grpc-js cannot decompress: INTERNAL from grpc-js, not a reply of their own (docs/api.md says so)', async () => {
    const refused = await open([frame(gzipSync(held().subarray(5)), true), frame(Buffer.from('not gzip'), true)], { 'grpc-encoding': 'gzip' }, 'cancel')
    expect([statusOf(refused), messageOf(refused)]).toEqual([grpc.status.INTERNAL, 'Failed to decompress message'])
    await vi.waitFor(() => expect(h.gateway.admission.count).toBe(0))
  })
})
