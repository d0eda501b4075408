// A client that never takes its answer (a flow-control window of 0: the answer's headers go
// out, its message never can) holds a call's stream, and a compressed call's place among
// server.grpc_max_compressed_calls, no longer than server.request_timeout_ms allows: on the
// calls grpc-js serves (compressed unary calls, every unary method but plain Predict and
// ModelInfer, server-streaming ones) as on the fast path (read-limit.int.test.ts), the
// stream is reset (the client sees CANCELLED). A client that reads is not cut.
import * as grpc from '@grpc/grpc-js'
import { once } from 'node:events'
import { connect, constants, type ClientHttp2Session } from 'node:http2'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHarness, TEST_CONFIG, xInput, type Harness } from './harness.ts'
import { frame, rawCall, statusOf, type Answer } from './raw-call.ts'

// Long enough that a busy box sends the calls expected to be answered within it.
const READ_LIMIT_MS = 1000
const CONFIG = TEST_CONFIG.replace('server: { max_in_flight: 6,', `server: { max_in_flight: 6, request_timeout_ms: ${READ_LIMIT_MS}, grpc_max_compressed_calls: 2,`)
const GZIP = { 'grpc-encoding': 'gzip' }
const PREDICT = '/specserve.v1.Gateway/Predict'
const WATCH = '/grpc.health.v1.Health/Watch'
/** A HealthCheckRequest for the server as a whole (service ""), framed. */
const WHOLE_SERVER = frame(Buffer.alloc(0))

/** Answered (status 200, its headers out), nothing of its message taken, then reset. */
function expectReset(answer: Answer): void {
  expect([answer.headers[':status'], answer.headers['grpc-status'], answer.body.length, answer.rstCode]).toEqual([200, undefined, 0, constants.NGHTTP2_CANCEL])
}

type Serializer = { requestSerialize: (m: object) => Buffer }

describe('an answer its client never takes, on a call grpc-js serves (server.request_timeout_ms)', () => {
  let h: Harness
  let session: ClientHttp2Session
  /** A client whose streams' flow-control window is 0, and stays so: it never takes an answer's message. */
  let closedWindow: ClientHttp2Session
  let predictBytes: Buffer

  beforeAll(async () => {
    h = await startHarness(CONFIG)
    session = connect(`http://${h.address}`)
    closedWindow = connect(`http://${h.address}`, { settings: { initialWindowSize: 0 } })
    predictBytes = (h.gatewayClient.Predict as unknown as Serializer).requestSerialize({ ensemble: 'fallback', inputs: xInput })
  })
  afterAll(async () => {
    session?.close()
    closedWindow?.close()
    await h?.close()
  })

  it('resets compressed Predicts whose answers are never taken, and their places serve the next compressed calls', async () => {
    const gzipped = frame(gzipSync(predictBytes), true)
    // As many as the bound (grpc_max_compressed_calls: 2): held, they would refuse every later compressed call.
    const unread = await Promise.all([rawCall(closedWindow, PREDICT, [gzipped], GZIP), rawCall(closedWindow, PREDICT, [gzipped], GZIP)])
    unread.forEach(expectReset)
    const served = await Promise.all([rawCall(session, PREDICT, [gzipped], GZIP), rawCall(session, PREDICT, [gzipped], GZIP)])
    for (const answer of served) expect([statusOf(answer), answer.headers['specserve-code']], JSON.stringify(answer.headers)).toEqual([grpc.status.OK, undefined])
  })

  it('resets unread answers of the other unary methods: ModelMetadata, a health Check', async () => {
    const metadata = frame((h.inferenceClient.ModelMetadata as unknown as Serializer).requestSerialize({ name: 'cancer' }))
    const calls: [string, Buffer][] = [
      ['/inference.GRPCInferenceService/ModelMetadata', metadata],
      ['/grpc.health.v1.Health/Check', WHOLE_SERVER],
    ]
    const unread = await Promise.all(calls.map(([path, message]) => rawCall(closedWindow, path, [message])))
    unread.forEach(expectReset)
    // Read, the same calls are answered OK.
    for (const [path, message] of calls) expect(statusOf(await rawCall(session, path, [message]))).toBe(grpc.status.OK)
  })

  it("resets a health Watch whose first answer is never taken, and leaves a read one open past the limit to see the next", async () => {
    const watching = session.request({ ':method': 'POST', ':path': WATCH, 'content-type': 'application/grpc', te: 'trailers' })
    watching.end(WHOLE_SERVER)
    const answers: Buffer[] = []
    let next = once(watching, 'data')
    watching.on('data', (b: Buffer) => answers.push(b))
    await next // SERVING
    try {
      // Its reset comes the limit after its answer was written: by then the read Watch has been open longer.
      expectReset(await rawCall(closedWindow, WATCH, [WHOLE_SERVER]))
      expect([watching.closed, answers.length]).toEqual([false, 1])
      next = once(watching, 'data')
      h.frontend.setServing(false)
      await next // NOT_SERVING
      expect(answers.map((b) => b.toString('hex'))).toEqual(['00000000020801', '00000000020802'])
    } finally {
      h.frontend.setServing(true)
      watching.close(constants.NGHTTP2_CANCEL)
    }
  })
})
