// A fast unary call lets go of its run once it is over. node:http2 keeps a stream (and so the
// call, through the stream's listeners) for many scavenges after it ends, so whatever the call
// still holds is promoted to the old generation with it: measured, the run held by its cancel
// listener doubled what each gRPC predict left to the old generation. Once answered, a call is
// watched until its answer has gone out: one a client never takes is reset at the read limit.
import { EventEmitter } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { constants, type ServerHttp2Stream } from 'node:http2'
import { describe, expect, it, vi } from 'vitest'
import { CompressedCalls } from '../../../src/api/grpc/compressed-calls.ts'
import { FastCall, type FastMethod } from '../../../src/api/grpc/fast-call.ts'
import { readLimit } from '../../../src/api/grpc/read-limit.ts'
import { codeMetadata } from '../../../src/api/grpc/status.ts'
import { FakeStream as SendingStream, useFakeClock } from './fake-stream.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** The parts of an HTTP/2 stream a call uses; nothing is sent anywhere. */
class FakeStream extends EventEmitter {
  destroyed = false
  closed = false
  headersSent = false
  respond(): void {
    this.headersSent = true
  }
  end(): void {}
  destroy(): void {
    this.destroyed = true
  }
}

const LIMITS = { maxReceiveBytes: 1 << 20, maxSendBytes: 1 << 20, read: readLimit(30_000), streaming: { requests: new Set<string>(), answers: new Set<string>() }, tooLarge: codeMetadata('PAYLOAD_TOO_LARGE'), deadlineExceeded: codeMetadata('DEADLINE_EXCEEDED'), compressed: new CompressedCalls(16) }
const framed = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 0, bytes.length]), bytes])

/**
 * A call whose handler starts a "run" (a large object its cancel listener closes over, as
 * servePredict's does) and answers it `outcome`-wise; the run is watched through a WeakRef.
 */
function callThatRuns(stream: FakeStream, outcome: 'answer' | 'fail' | 'cancelled'): WeakRef<object> {
  let watched: WeakRef<object> | undefined
  const method: FastMethod = {
    decode: (bytes) => ({ bytes }),
    encode: () => framed(Buffer.from('ok')),
    handler: (call, callback) => {
      const run = { tensors: new Float32Array(1 << 16), cancelled: false }
      watched = new WeakRef(run)
      call.once('cancelled', () => (run.cancelled = true))
      if (outcome === 'answer') callback(null, {})
      else if (outcome === 'fail') callback({ code: 9, details: 'failed precondition' } as never, null)
    },
  }
  new FastCall(stream as unknown as ServerHttp2Stream, { ':path': '/p' }, method, Infinity, Infinity, LIMITS)
  stream.emit('data', framed(Buffer.from('request')))
  stream.emit('end')
  if (outcome === 'cancelled') stream.emit('close')
  return watched as WeakRef<object>
}

describe('a fast unary call, once over', () => {
  it.each(['answer', 'fail', 'cancelled'] as const)('holds nothing of its run while its stream lives on (%s)', async (outcome) => {
    const stream = new FakeStream()
    const run = callThatRuns(stream, outcome)
    // A WeakRef's target is kept until the job that made it ends.
    await new Promise((resolve) => setImmediate(resolve))
    gc()
    expect(run.deref()).toBeUndefined()
    // The stream, with the call's listeners on it, is still here.
    expect(stream.listenerCount('data')).toBeGreaterThan(0)
  })
})

describe('a fast unary call, once answered', () => {
  useFakeClock()

  /** A call answered at once: its answer written, waiting for the client's window. */
  function answered(): SendingStream {
    const stream = new SendingStream()
    const method: FastMethod = { decode: () => ({}), encode: () => framed(Buffer.from('ok')), handler: (_call, callback) => callback(null, {}) }
    new FastCall(stream as unknown as ServerHttp2Stream, { ':path': '/p' }, method, Infinity, Infinity, LIMITS)
    stream.emit('data', framed(Buffer.from('request')))
    stream.emit('end')
    return stream
  }

  it('is reset if its answer has not gone out within the read limit, and left alone once its stream has closed', async () => {
    const [stuck, taken] = [answered(), answered()]
    taken.emit('close') // its answer went out, the client had half-closed
    await vi.advanceTimersByTimeAsync(LIMITS.read.timeoutMs - 1)
    expect([stuck.sent, stuck.writableLength]).toEqual([[undefined], 7]) // response headers (no status in them), the answer waiting
    await vi.advanceTimersByTimeAsync(1)
    expect(stuck.sent).toEqual([undefined, `reset ${constants.NGHTTP2_CANCEL}`])
    expect(taken.sent).toEqual([undefined])
  })
})
