// Calls with message compression open at once are bounded (server.grpc_max_compressed_calls,
// src/api/grpc/compressed-calls.ts): grpc-js inflates each message, up to
// grpc_max_receive_bytes, before any admission limit, so a few KiB of gzip per call would
// otherwise hold MiBs each. One past the bound is refused before any of it is read; a call
// closing makes room again, and uncompressed calls are not counted.
import * as grpc from '@grpc/grpc-js'
import { once } from 'node:events'
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2'
import { deflateSync, gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startHarness, TEST_CONFIG, xInput, type Harness } from './harness.ts'
import { frame, messageOf, rawCall, statusOf } from './raw-call.ts'

const CONFIG = TEST_CONFIG.replace('server: { max_in_flight: 6,', 'server: { max_in_flight: 6, grpc_max_compressed_calls: 2,')
const GZIP = { 'grpc-encoding': 'gzip' }

describe('the bound on compressed calls (server.grpc_max_compressed_calls)', () => {
  let h: Harness
  let session: ClientHttp2Session
  let predictBytes: Buffer

  beforeAll(async () => {
    h = await startHarness(CONFIG)
    session = connect(`http://${h.address}`)
    const serialize = (h.gatewayClient.Predict as unknown as { requestSerialize: (m: object) => Buffer }).requestSerialize
    predictBytes = serialize({ ensemble: 'fallback', inputs: xInput })
  })
  afterAll(async () => {
    session?.close()
    await h?.close()
  })

  /** A compressed call that sends `chunks` and stays open: it holds its place until the client closes it. */
  const held = (path: string, chunks: Buffer[]): ClientHttp2Stream => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...GZIP })
    stream.on('error', () => {})
    for (const chunk of chunks) stream.write(chunk)
    return stream
  }

  it('refuses a compressed call past the bound RESOURCE_EXHAUSTED (OVERLOADED) before reading it, and admits one again once a call closes', async () => {
    const start = vi.spyOn(h.gateway, 'start')
    const gzipped = frame(gzipSync(predictBytes), true)
    // Two compressed calls open: a Predict whose message is half sent, and a PredictStream.
    const open = [held('/specserve.v1.Gateway/Predict', [gzipped.subarray(0, 8)]), held('/specserve.v1.Gateway/PredictStream', [])]
    try {
      const refused = await Promise.all([
        rawCall(session, '/specserve.v1.Gateway/Predict', [gzipped], GZIP),
        rawCall(session, '/inference.GRPCInferenceService/ModelInfer', [frame(deflateSync(Buffer.alloc(0)), true)], { 'grpc-encoding': 'deflate' }),
        rawCall(session, '/specserve.v1.Gateway/PredictStream', [gzipped], GZIP),
        rawCall(session, '/specserve.v1.Gateway/ListEnsembles', [frame(gzipSync(Buffer.alloc(0)), true)], GZIP),
      ])
      for (const answer of refused) {
        expect([statusOf(answer), answer.headers['specserve-code'], answer.rstCode]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'OVERLOADED', constants.NGHTTP2_NO_ERROR])
        expect(messageOf(answer)).toBe('more than 2 calls with message compression at once (server.grpc_max_compressed_calls): retry later, or send the call uncompressed')
      }
      expect(start).not.toHaveBeenCalled()
      // Uncompressed calls are not counted.
      expect(statusOf(await rawCall(session, '/specserve.v1.Gateway/Predict', [frame(predictBytes)]))).toBe(grpc.status.OK)

      // One closes: once the server has seen it close (a round trip after it), a compressed call is served.
      const closed = once(open[0]!, 'close')
      open[0]!.close(constants.NGHTTP2_CANCEL)
      await closed
      expect(statusOf(await rawCall(session, '/specserve.v1.Gateway/Predict', [frame(predictBytes)]))).toBe(grpc.status.OK)
      expect(statusOf(await rawCall(session, '/specserve.v1.Gateway/Predict', [gzipped], GZIP))).toBe(grpc.status.OK)
    } finally {
      for (const stream of open) stream.close(constants.NGHTTP2_CANCEL)
      start.mockRestore()
    }
  })
})
