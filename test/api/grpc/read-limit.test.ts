// A call grpc-js serves, watched by the read limit: what it does at its due time depends on
// how far the call got. Its whole request in (END_STREAM received) counts as in time even
// while grpc-js holds back the stream's 'end' to decompress the message. On a stream of many
// messages, only a message begun and not yet whole is timed, and only while the stream is read.
import { EventEmitter } from 'node:events'
import type { ServerHttp2Stream } from 'node:http2'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { constants } from 'node:http2'
import { readLimit, watchGrpcJsRead, watchStreamMessages } from '../../../src/api/grpc/read-limit.ts'

/** The parts of an HTTP/2 stream the watch reads and calls; nothing is sent anywhere. */
class FakeStream extends EventEmitter {
  destroyed = false
  closed = false
  headersSent = false
  writableEnded = false
  readableFlowing: boolean | null = true
  state = { remoteClose: 0 }
  readonly sent: unknown[] = []
  respond(headers: Record<string, unknown>, options: { endStream?: boolean }): void {
    this.headersSent = true
    this.writableEnded = options.endStream === true
    this.sent.push(headers['grpc-status'])
  }
  close(code: number = constants.NGHTTP2_NO_ERROR): void {
    this.closed = true
    this.sent.push(code === constants.NGHTTP2_NO_ERROR ? 'closed' : `reset ${code}`)
  }
  destroy(): void {
    this.destroyed = true
  }
}

const LIMIT = readLimit(1000)

function watched(setUp: (stream: FakeStream) => void = () => {}): FakeStream {
  const stream = new FakeStream()
  setUp(stream)
  watchGrpcJsRead(stream as unknown as ServerHttp2Stream, Date.now() + LIMIT.timeoutMs, LIMIT)
  return stream
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('the read limit on a call grpc-js serves', () => {
  it('answers REQUEST_TIMEOUT at its due time, not before, then closes the stream', async () => {
    const stream = watched()
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
    expect(stream.sent).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(stream.sent).toEqual(['4', 'closed'])
  })

  it("leaves a call alone whose request ended in time, or whose whole request is in with its 'end' held back", async () => {
    const ended = watched()
    ended.emit('end')
    const held = watched((s) => (s.state.remoteClose = 1))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect([ended.sent, held.sent]).toEqual([[], []])
  })

  it("keeps grpc-js's answer and closes the stream; leaves an answer under way to finish", async () => {
    const answered = watched((s) => Object.assign(s, { headersSent: true, writableEnded: true }))
    const answering = watched((s) => (s.headersSent = true))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect([answered.sent, answering.sent]).toEqual([['closed'], []])
  })
})

describe('the read limit on a stream of many messages', () => {
  const streamed = (): FakeStream => {
    const stream = new FakeStream()
    watchStreamMessages(stream as unknown as ServerHttp2Stream, LIMIT)
    return stream
  }
  const prefix = (length: number): Buffer => Buffer.from([0, length >>> 24, (length >>> 16) & 255, (length >>> 8) & 255, length & 255])

  it('times a message from its first byte until it is whole, across chunks and prefixes split anywhere', async () => {
    const stream = streamed()
    // Two whole messages in one chunk, then nothing for longer than the limit: nothing is timed.
    stream.emit('data', Buffer.concat([prefix(2), Buffer.from([1, 2]), prefix(0)]))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 2)
    // A 300-byte message whose prefix is split after its second byte, and whose body comes in two parts, each in time.
    const body = Buffer.alloc(300, 7)
    stream.emit('data', prefix(300).subarray(0, 2))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
    stream.emit('data', Buffer.concat([prefix(300).subarray(2), body.subarray(0, 100)]))
    stream.emit('data', body.subarray(100))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect(stream.sent).toEqual([])
    // The next one stops after its prefix: answered at the limit from its first byte, then closed.
    stream.emit('data', prefix(10))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
    expect(stream.sent).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(stream.sent).toEqual(['4', 'closed'])
  })

  it('does not time the wait while grpc-js is not reading the stream; resets a stream already answering, closes one answered', async () => {
    const paused = streamed()
    paused.emit('data', prefix(10))
    paused.readableFlowing = false
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 3)
    expect(paused.sent).toEqual([])
    paused.readableFlowing = true
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect(paused.sent).toEqual(['4', 'closed'])

    const answering = streamed()
    answering.headersSent = true
    answering.emit('data', prefix(10))
    const answered = streamed()
    Object.assign(answered, { headersSent: true, writableEnded: true })
    answered.emit('data', prefix(10))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect([answering.sent, answered.sent]).toEqual([[`reset ${constants.NGHTTP2_CANCEL}`], ['closed']])
  })
})
