// Predict and ModelInfer on an open gateway are answered from their HTTP/2 stream, without
// grpc-js's per-call machinery (src/api/grpc/fast-unary.ts). A raw HTTP/2 client checks
// what a gRPC client sees on the edges grpc-js used to handle, and which calls still go
// to grpc-js. Everyday calls through real clients are in the service tests beside this one.
import * as grpc from '@grpc/grpc-js'
import { connect, type ClientHttp2Session } from 'node:http2'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { samples } from '../../helpers.ts'
import { bearer, guardedYaml, KEYS } from '../../security/fixture.ts'
import { startHarness, type Harness } from './harness.ts'
import { frame, messageOf, rawCall, statusOf, type Answer } from './raw-call.ts'

const cancer = samples('cancer')

/** grpc-js looks up the handler of every call it serves (server.js `_retrieveHandler`); the fast path does not. */
const grpcJsCalls = (frontend: Harness['frontend']) => vi.spyOn(frontend.server as unknown as { _retrieveHandler: (path: string) => unknown }, '_retrieveHandler')

describe('the fast unary path', () => {
  let h: Harness
  let session: ClientHttp2Session
  let predictBytes: Buffer
  const call = (path: string, chunks: Buffer[], extra: Record<string, string> = {}, end = true): Promise<Answer> => rawCall(session, path, chunks, extra, end ? 'half-close' : 'cancel')

  beforeAll(async () => {
    h = await startHarness()
    session = connect(`http://${h.address}`)
    const serialize = (h.gatewayClient.Predict as unknown as { requestSerialize: (m: object) => Buffer }).requestSerialize
    predictBytes = serialize({ ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0], shape: [1, 30] } } })
  })
  afterAll(async () => {
    session?.close()
    await h?.close()
  })

  it('is on for an open gateway, and builds no grpc-js metadata for a plain Predict', async () => {
    expect(h.frontend.fastUnary).toBe(true)
    const metadata = vi.spyOn(grpc.Metadata, 'fromHttp2Headers')
    const viaGrpcJs = grpcJsCalls(h.frontend)
    try {
      const ok = await call('/specserve.v1.Gateway/Predict', [frame(predictBytes)], { 'grpc-timeout': '5S' })
      expect(statusOf(ok)).toBe(grpc.status.OK)
      expect(ok.headers['content-type']).toBe('application/grpc+proto')
      const decode = (h.gatewayClient.Predict as unknown as { responseDeserialize: (b: Buffer) => { ensemble: string; decision: { chosen: string } } }).responseDeserialize
      expect(ok.body.readUInt32BE(1)).toBe(ok.body.length - 5)
      expect(decode(ok.body.subarray(5))).toMatchObject({ ensemble: 'cancer', decision: { chosen: 'cancer-mlp' } })
      expect(metadata).not.toHaveBeenCalled()
      expect(viaGrpcJs).not.toHaveBeenCalled()

      // A compressed call is grpc-js's to read: it still answers, through grpc-js.
      const gzipped = await call('/specserve.v1.Gateway/Predict', [frame(gzipSync(predictBytes), true)], { 'grpc-encoding': 'gzip' })
      expect(statusOf(gzipped)).toBe(grpc.status.OK)
      expect(metadata).toHaveBeenCalled()
      expect(viaGrpcJs).toHaveBeenCalledWith('/specserve.v1.Gateway/Predict')
    } finally {
      metadata.mockRestore()
      viaGrpcJs.mockRestore()
    }
  })

  it('takes a deadline past 2^31 ms (grpc-go writes 30 days as 2592000S) as the long deadline it is, on this path and through grpc-js', async () => {
    for (const timeout of ['2592000S', '99999999H']) {
      const fast = await call('/specserve.v1.Gateway/Predict', [frame(predictBytes)], { 'grpc-timeout': timeout })
      expect([statusOf(fast), messageOf(fast)]).toEqual([grpc.status.OK, 'OK'])
      // Compressed: grpc-js's to serve, which would wrap such a timeout to a negative one.
      const viaGrpcJs = await call('/specserve.v1.Gateway/Predict', [frame(gzipSync(predictBytes), true)], { 'grpc-encoding': 'gzip', 'grpc-timeout': timeout })
      expect(statusOf(viaGrpcJs)).toBe(grpc.status.OK)
    }
  })

  it('refuses a malformed grpc-timeout INTERNAL on every call, where grpc-js would take a number found anywhere in it, and closes the stream', async () => {
    const start = vi.spyOn(h.gateway, 'start')
    try {
      // 9 digits (8 at most), a sign, a fraction, blanks inside: grpc-js read them as 23456789 s (then 596 H), 1 s, 5 s and 1 s.
      for (const timeout of ['123456789S', '0000000001S', '-1S', '1.5S', '1 S', '1\tS', 'S', '1s']) {
        const calls = [
          call('/specserve.v1.Gateway/Predict', [frame(predictBytes)], { 'grpc-timeout': timeout }),
          call('/specserve.v1.Gateway/Predict', [frame(gzipSync(predictBytes), true)], { 'grpc-encoding': 'gzip', 'grpc-timeout': timeout }),
          call('/specserve.v1.Gateway/ListEnsembles', [frame(Buffer.alloc(0))], { 'grpc-timeout': timeout }),
          call('/specserve.v1.Gateway/PredictStream', [frame(predictBytes)], { 'grpc-timeout': timeout }),
          // A client that neither half-closes nor cancels: the server closes the stream.
          rawCall(session, '/specserve.v1.Gateway/PredictStream', [frame(predictBytes)], { 'grpc-timeout': timeout }, 'open'),
        ]
        for (const pending of calls) {
          const refused = await pending
          expect([statusOf(refused), messageOf(refused)]).toEqual([grpc.status.INTERNAL, `Invalid grpc-timeout value "${timeout}"`])
        }
      }
      expect(start).not.toHaveBeenCalled()
      // No grpc-timeout at all: no deadline, on this path and through grpc-js.
      expect(statusOf(await call('/specserve.v1.Gateway/Predict', [frame(predictBytes)]))).toBe(grpc.status.OK)
      expect(statusOf(await call('/specserve.v1.Gateway/Predict', [frame(gzipSync(predictBytes), true)], { 'grpc-encoding': 'gzip' }))).toBe(grpc.status.OK)
      expect(start.mock.calls.map(([request]) => request.transportBudgetMs)).toEqual([undefined, undefined])
    } finally {
      start.mockRestore()
    }
  })

  it('reads a message split over many DATA frames', async () => {
    const whole = frame(predictBytes)
    const pieces = [whole.subarray(0, 2), whole.subarray(2, 7), whole.subarray(7, 40), whole.subarray(40)]
    const ok = await call('/specserve.v1.Gateway/Predict', pieces)
    expect(statusOf(ok)).toBe(grpc.status.OK)
  })

  it('answers as grpc-js does to no message and two messages', async () => {
    const none = await call('/specserve.v1.Gateway/Predict', [])
    expect(statusOf(none)).toBe(grpc.status.UNIMPLEMENTED)
    expect(messageOf(none)).toMatch(/no request message/)
    const two = await call('/specserve.v1.Gateway/Predict', [frame(predictBytes), frame(predictBytes)])
    expect(statusOf(two)).toBe(grpc.status.UNIMPLEMENTED)
    expect(messageOf(two)).toMatch(/second request message/)
    expect(h.gateway.admission.count).toBe(0)
  })

  it('refuses a message whose compressed flag is set on a call without compression INTERNAL, before decoding it, on this path and through grpc-js', async () => {
    // gRPC over HTTP/2: without a grpc-encoding the flag must be 0 (grpc-go and grpc-java answer
    // INTERNAL). grpc-js reads such bytes as they are: a predict ran on them, or gzip bytes were
    // blamed on the client's message (INVALID_ARGUMENT, BAD_REQUEST).
    const start = vi.spyOn(h.gateway, 'start')
    try {
      for (const [flag, bytes] of [[1, predictBytes], [1, gzipSync(predictBytes)], [2, predictBytes]] as const) {
        for (const extra of [{}, { 'grpc-encoding': 'identity' }] as Record<string, string>[]) {
          for (const path of ['/specserve.v1.Gateway/Predict', '/inference.GRPCInferenceService/ModelInfer', '/specserve.v1.Gateway/ListEnsembles']) {
            const refused = await call(path, [frame(bytes, flag)], extra)
            expect([statusOf(refused), messageOf(refused)]).toEqual([grpc.status.INTERNAL, expect.stringContaining(`compressed flag ${flag}`)])
          }
        }
      }
      expect(start).not.toHaveBeenCalled()
    } finally {
      start.mockRestore()
    }
    // Under a grpc-encoding the flag says the message is compressed, as it should.
    const gzipped = await call('/specserve.v1.Gateway/Predict', [frame(gzipSync(predictBytes), true)], { 'grpc-encoding': 'gzip' })
    expect(statusOf(gzipped)).toBe(grpc.status.OK)
    expect(h.gateway.admission.count).toBe(0)
  })

  it('refuses an oversized message from its prefix, before its bytes arrive', async () => {
    const prefix = Buffer.from([0, 0, 0, 0, 0])
    prefix.writeUInt32BE(65_537, 1) // the harness allows 65,536
    const refused = await call('/specserve.v1.Gateway/Predict', [prefix], {}, false)
    expect(statusOf(refused)).toBe(grpc.status.RESOURCE_EXHAUSTED)
    expect(messageOf(refused)).toMatch(/larger than max \(65537 vs 65536\)/)
    // Its stable code, as every error of ours carries (RESOURCE_EXHAUSTED is also OVERLOADED, RATE_LIMITED).
    expect(refused.headers['specserve-code']).toBe('PAYLOAD_TOO_LARGE')
  })

  it('refuses a second message once its prefix is in, even from a client that never half-closes', async () => {
    const second = Buffer.from([0, 0, 0, 0, 8])
    const two = await call('/specserve.v1.Gateway/Predict', [frame(predictBytes), second], {}, false)
    expect(statusOf(two)).toBe(grpc.status.UNIMPLEMENTED)
    second.writeUInt32BE(70_000, 1) // over the harness's 65,536: refused by its size, as grpc-js does
    const oversized = await call('/specserve.v1.Gateway/Predict', [frame(predictBytes), second], {}, false)
    expect(statusOf(oversized)).toBe(grpc.status.RESOURCE_EXHAUSTED)
    expect(messageOf(oversized)).toMatch(/70000 vs 65536/)
    expect(oversized.headers['specserve-code']).toBe('PAYLOAD_TOO_LARGE')
  })

  it('ends a call whose request is still arriving at its deadline with DEADLINE_EXCEEDED', async () => {
    const whole = frame(predictBytes)
    const stalled = await call('/specserve.v1.Gateway/Predict', [whole.subarray(0, 10)], { 'grpc-timeout': '150m' }, false)
    expect(statusOf(stalled)).toBe(grpc.status.DEADLINE_EXCEEDED)
    expect(stalled.headers['specserve-code']).toBe('DEADLINE_EXCEEDED')
    expect(h.gateway.admission.count).toBe(0)
  })

  it('answers a request that does not decode INVALID_ARGUMENT with its stable code', async () => {
    const bad = await call('/inference.GRPCInferenceService/ModelInfer', [frame(Buffer.from([0x12, 0x03, 0x0a]))])
    expect(statusOf(bad)).toBe(grpc.status.INVALID_ARGUMENT)
    expect(bad.headers['specserve-code']).toBe('BAD_REQUEST')
  })
})

describe('the fast unary path on a guarded gateway', () => {
  it('asks the guard for every call: refused without a key or scope, answered with one, and not through grpc-js', async () => {
    const guarded = await startHarness(guardedYaml())
    const session = connect(`http://${guarded.address}`)
    const serialize = (guarded.gatewayClient.Predict as unknown as { requestSerialize: (m: object) => Buffer }).requestSerialize
    const bytes = serialize({ ensemble: 'g', inputs: { x: { fp32_data: [0.5, 0.5], shape: [1, 2] } } })
    const viaGrpcJs = grpcJsCalls(guarded.frontend)
    try {
      expect(guarded.frontend.fastUnary).toBe(true)
      const request = (headers: Record<string, string>): Promise<Answer> => rawCall(session, '/specserve.v1.Gateway/Predict', [frame(bytes)], headers)
      const anonymous = await request({})
      expect(statusOf(anonymous)).toBe(grpc.status.UNAUTHENTICATED)
      expect(anonymous.headers['specserve-code']).toBe('UNAUTHENTICATED')
      expect(statusOf(await request(bearer(KEYS.predictE)))).toBe(grpc.status.PERMISSION_DENIED)
      expect(statusOf(await request(bearer(KEYS.debugger)))).toBe(grpc.status.OK)
      expect(viaGrpcJs).not.toHaveBeenCalled()
    } finally {
      viaGrpcJs.mockRestore()
      session.close()
      await guarded.close()
    }
  })
})
