// A gRPC call with one request message must send it, and half-close, within
// server.request_timeout_ms (src/api/grpc/read-limit.ts), whether the fast unary path or
// grpc-js serves it, with a deadline or none; its stream is then closed, so a client that
// never finishes its calls holds neither their buffers nor their stream slots, also once
// something else (a deadline, a size refusal) has answered them. A call whose request is in
// is not cut by it, nor is a stream of many messages as long as each message it has begun
// comes whole within the limit and its client takes its answers; a unary answer, or a
// stream's, not gone out within the limit resets its stream.
import * as grpc from '@grpc/grpc-js'
import { once } from 'node:events'
import { connect, constants, type ClientHttp2Session } from 'node:http2'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHarness, TEST_CONFIG, xInput, type Harness } from './harness.ts'
import { AFTER_ANSWER, frame, messageOf, rawCall, statusOf, type Answer } from './raw-call.ts'

const READ_LIMIT_MS = 300
const CONFIG = TEST_CONFIG.replace('server: { max_in_flight: 6,', `server: { max_in_flight: 6, request_timeout_ms: ${READ_LIMIT_MS},`)

/** A message prefix announcing one byte more than the harness allows (65,536). */
const oversized = Buffer.from([0, 0, 1, 0, 1])

const cancerInput = { input: { fp32_data: new Array(30).fill(0.5), shape: [1, 30] } }

const codeOf = (e: Answer): unknown => e.trailers['specserve-code'] ?? e.headers['specserve-code']

/** A call that writes `chunks` and then neither half-closes nor resets: only the server can end it. */
const unfinished = (session: ClientHttp2Session, path: string, chunks: Parameters<typeof rawCall>[2], extra: Record<string, string> = {}): Promise<Answer> => rawCall(session, path, chunks, extra, 'open')

/** The answer to a request that came too slowly: DEADLINE_EXCEEDED, its stable code, then the stream closed without error. */
function expectTimedOut(e: Answer): void {
  expect(statusOf(e)).toBe(grpc.status.DEADLINE_EXCEEDED)
  expect(codeOf(e)).toBe('REQUEST_TIMEOUT')
  expect(messageOf(e)).toBe(`the request did not arrive within ${READ_LIMIT_MS} ms (server.request_timeout_ms)`)
  expect(e.rstCode).toBe(constants.NGHTTP2_NO_ERROR)
}

describe('the read limit on gRPC calls (server.request_timeout_ms)', () => {
  let h: Harness
  let session: ClientHttp2Session
  let serialize: (m: object) => Buffer
  let predictBytes: Buffer
  /** One PredictStream message, framed. */
  let streamMessage: Buffer

  beforeAll(async () => {
    h = await startHarness(CONFIG)
    session = connect(`http://${h.address}`)
    serialize = (h.gatewayClient.Predict as unknown as { requestSerialize: (m: object) => Buffer }).requestSerialize
    predictBytes = serialize({ ensemble: 'fallback', inputs: xInput })
    const streamSerialize = (h.gatewayClient.PredictStream as unknown as { requestSerialize: (m: object) => Buffer }).requestSerialize
    streamMessage = frame(streamSerialize({ id: 'm', ensemble: 'cancer', inputs: cancerInput }))
  })
  afterAll(async () => {
    session?.close()
    await h?.close()
  })

  it('ends a fast Predict with no deadline whose message never completes', async () => {
    expectTimedOut(await unfinished(session, '/specserve.v1.Gateway/Predict', [frame(predictBytes).subarray(0, 8)]))
  })

  it('ends one whose deadline is days away, and one whose whole message came but that never half-closed', async () => {
    expectTimedOut(await unfinished(session, '/specserve.v1.Gateway/Predict', [frame(predictBytes).subarray(0, 8)], { 'grpc-timeout': '99999999S' }))
    expectTimedOut(await unfinished(session, '/specserve.v1.Gateway/Predict', [frame(predictBytes)]))
  })

  it('ends the calls grpc-js serves too: a compressed Predict, a health check, a call that sent nothing', async () => {
    const gzipped = frame(gzipSync(predictBytes), true)
    expectTimedOut(await unfinished(session, '/specserve.v1.Gateway/Predict', [gzipped.subarray(0, 8)], { 'grpc-encoding': 'gzip' }))
    expectTimedOut(await unfinished(session, '/grpc.health.v1.Health/Check', [Buffer.from([0, 0, 0, 0, 9])]))
    expectTimedOut(await unfinished(session, '/inference.GRPCInferenceService/ServerMetadata', []))
  })

  it('closes the stream of a call answered before the limit whose client never half-closes', async () => {
    // grpc-js's own deadline answers a health check first; the limit closes its stream.
    const checked = await unfinished(session, '/grpc.health.v1.Health/Check', [Buffer.from([0, 0, 0, 0, 9])], { 'grpc-timeout': '100m' })
    expect(statusOf(checked)).toBe(grpc.status.DEADLINE_EXCEEDED)
    expect(codeOf(checked)).toBeUndefined()
    expect(checked.rstCode).toBe(constants.NGHTTP2_NO_ERROR)
    // On the fast path: a deadline before the limit, and a message refused for its size.
    const late = await unfinished(session, '/specserve.v1.Gateway/Predict', [frame(predictBytes).subarray(0, 8)], { 'grpc-timeout': '100m' })
    // Its deadline's code, not the read limit's REQUEST_TIMEOUT (grpc-js's own deadline above carries none).
    expect([statusOf(late), messageOf(late), codeOf(late), late.rstCode]).toEqual([grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded', 'DEADLINE_EXCEEDED', constants.NGHTTP2_NO_ERROR])
    const refused = await unfinished(session, '/specserve.v1.Gateway/Predict', [oversized])
    expect([statusOf(refused), refused.rstCode]).toEqual([grpc.status.RESOURCE_EXHAUSTED, constants.NGHTTP2_NO_ERROR])
    // grpc-js answers a path no method serves at once; nothing reads that stream, so node:http2 closes it then (the limit would, else).
    const unknown = await unfinished(session, '/no.such.Service/Method', [Buffer.from([0, 0, 0, 0, 9])])
    expect([statusOf(unknown), unknown.rstCode]).toEqual([grpc.status.UNIMPLEMENTED, constants.NGHTTP2_NO_ERROR])
  })

  it('does not cut a call whose request is in and whose predict runs past the limit', async () => {
    // `slow` answers after 600 ms, twice the read limit; its budget lets it.
    const slow = frame(serialize({ ensemble: 'fallback', budget_ms: 900, inputs: xInput }))
    const answers = await Promise.all([
      rawCall(session, '/specserve.v1.Gateway/Predict', [slow]),
      rawCall(session, '/specserve.v1.Gateway/Predict', [frame(gzipSync(slow.subarray(5)), true)], { 'grpc-encoding': 'gzip' }),
    ])
    for (const answer of answers) {
      expect(statusOf(answer), JSON.stringify(answer)).toBe(grpc.status.OK)
      expect(answer.rstCode).toBe(constants.NGHTTP2_NO_ERROR)
    }
  })

  it('resets a fast Predict whose client does not take its answer, once it has waited the limit to go out', async () => {
    // A stream window of 0: the answer's headers go out (not flow-controlled), its message never can.
    const closedWindow = connect(`http://${h.address}`, { settings: { initialWindowSize: 0 } })
    try {
      const answer = await rawCall(closedWindow, '/specserve.v1.Gateway/Predict', [frame(predictBytes)])
      expect([answer.headers[':status'], answer.headers['grpc-status'], answer.body.length, answer.rstCode]).toEqual([200, undefined, 0, constants.NGHTTP2_CANCEL])
      // A client that takes its answer is not cut, however long it holds the connection.
      expect(statusOf(await rawCall(session, '/specserve.v1.Gateway/Predict', [frame(predictBytes)]))).toBe(grpc.status.OK)
    } finally {
      closedWindow.close()
    }
  })

  it('ends a stream of many messages whose message, once begun, does not come whole: with the status before any answer, by a reset after', async () => {
    // Cut inside the message prefix, before anything was answered.
    expectTimedOut(await unfinished(session, '/specserve.v1.Gateway/PredictStream', [streamMessage.subarray(0, 3)]))
    expectTimedOut(await unfinished(session, '/inference.GRPCInferenceService/ModelStreamInfer', [streamMessage.subarray(0, 3)]))
    // One message answered (the response headers are out, so no status can follow them past
    // grpc-js), then one cut inside its body: the stream is reset, and the client sees CANCELLED.
    const answered = await unfinished(session, '/specserve.v1.Gateway/PredictStream', [streamMessage, AFTER_ANSWER, streamMessage.subarray(0, 8)])
    expect(answered.headers[':status']).toBe(200)
    expect(answered.body.length).toBeGreaterThan(5)
    expect([answered.trailers['grpc-status'], answered.rstCode]).toEqual([undefined, constants.NGHTTP2_CANCEL])
  })

  it('resets a stream of many messages whose client does not take its answers, once one has waited the limit to go out', async () => {
    // A client that sends on and never reads: its window fills, then so does the server's buffer, and the server stops reading it too.
    // One with a small window that sends a few and half-closes: its answers wait, and the server has nothing left to read.
    const small = connect(`http://${h.address}`, { settings: { initialWindowSize: 1024 } })
    try {
      for (const [client, messages, halfClose] of [[session, 3000, false], [small, 10, true]] as const) {
        const opened = Date.now()
        const stream = client.request({ ':method': 'POST', ':path': '/specserve.v1.Gateway/PredictStream', 'content-type': 'application/grpc', te: 'trailers' })
        stream.pause() // never read
        const answered = once(stream, 'response')
        const closed = once(stream, 'close')
        for (let i = 0; i < messages; i++) stream.write(streamMessage)
        if (halfClose) stream.end()
        const [headers] = (await answered) as [Record<string, unknown>]
        await closed
        expect([headers[':status'], stream.rstCode]).toEqual([200, constants.NGHTTP2_CANCEL])
        expect(Date.now() - opened).toBeGreaterThanOrEqual(READ_LIMIT_MS)
      }
      // The same small window, read: each answer waits for room, briefly, and the call ends OK.
      const read = await rawCall(small, '/specserve.v1.Gateway/PredictStream', new Array<Buffer>(50).fill(streamMessage))
      expect([statusOf(read), read.rstCode]).toEqual([grpc.status.OK, constants.NGHTTP2_NO_ERROR])
      expect(read.body.length).toBeGreaterThan(1024 * 4)
    } finally {
      small.close()
    }
  })

  it('closes a stream of many messages that was answered (its deadline, a message over the size limit) whose client stays open, and leaves one grpc-js did not take to node', async () => {
    // grpc-js's deadline answers it; the client sends nothing more: closed at the limit.
    const late = await unfinished(session, '/specserve.v1.Gateway/PredictStream', [], { 'grpc-timeout': '100m' })
    expect([statusOf(late), codeOf(late), late.rstCode]).toEqual([grpc.status.DEADLINE_EXCEEDED, undefined, constants.NGHTTP2_NO_ERROR])
    // A message refused for its size, first (a trailers-only answer) or after an answer (the
    // status in trailers after the data, which closing the stream must not cut off).
    const refused = await unfinished(session, '/specserve.v1.Gateway/PredictStream', [oversized, AFTER_ANSWER, Buffer.alloc(64)])
    expect([statusOf(refused), refused.rstCode]).toEqual([grpc.status.RESOURCE_EXHAUSTED, constants.NGHTTP2_NO_ERROR])
    const refusedLater = await unfinished(session, '/specserve.v1.Gateway/PredictStream', [streamMessage, AFTER_ANSWER, oversized])
    expect([refusedLater.trailers['grpc-status'], refusedLater.rstCode]).toEqual([String(grpc.status.RESOURCE_EXHAUSTED), constants.NGHTTP2_NO_ERROR])
    // grpc-js answers a wrong content type (415) without reading the stream; node:http2 then closes it.
    const wrongType = await unfinished(session, '/specserve.v1.Gateway/PredictStream', [], { 'content-type': 'text/plain' })
    expect([wrongType.headers[':status'], wrongType.rstCode]).toEqual([415, constants.NGHTTP2_NO_ERROR])
  })

  it('leaves a stream of many messages open past the limit', async () => {
    type Reply = { id: string; outcome: string }
    const stream = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, Reply>)(new grpc.Metadata())
    const replies: Reply[] = []
    stream.on('data', (r: Reply) => replies.push(r))
    const ended = once(stream, 'end')
    const message = (id: string): object => ({ id, ensemble: 'cancer', inputs: cancerInput })
    // Answered, so open on the server before the call below, which the limit then ends: the stream has been open longer than the limit.
    const first = once(stream, 'data')
    stream.write(message('first'))
    await first
    expectTimedOut(await unfinished(session, '/specserve.v1.Gateway/Predict', []))
    stream.write(message('late'))
    stream.end()
    await ended
    expect(replies).toEqual([expect.objectContaining({ id: 'first', outcome: 'response' }), expect.objectContaining({ id: 'late', outcome: 'response' })])
  })
})
