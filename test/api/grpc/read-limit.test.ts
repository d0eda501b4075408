// A call grpc-js serves, watched by the read limit: what it does at its due time depends on
// how far the call got. Its whole request in (END_STREAM received) counts as in time even
// while grpc-js holds back the stream's 'end' to decompress the message; a unary answer must
// then go out, a limit after a sweep finds it written, or the stream is reset.
import { constants, type ServerHttp2Stream } from 'node:http2'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { readLimit, watchGrpcJsRead } from '../../../src/api/grpc/read-limit.ts'
import { FakeStream, useFakeClock } from './fake-stream.ts'

const LIMIT = readLimit(1000)
const RESET = `reset ${constants.NGHTTP2_CANCEL}`

/** Every stream watched in a test, closed after it: a unary call's watch lasts until its stream closes, and the sweep is shared. */
const open = new Set<FakeStream>()

function watched(setUp: (stream: FakeStream) => void = () => {}, unary = true): FakeStream {
  const stream = new FakeStream()
  open.add(stream)
  setUp(stream)
  watchGrpcJsRead(stream as unknown as ServerHttp2Stream, Date.now() + LIMIT.timeoutMs, LIMIT, unary)
  return stream
}

/** The client half-closes: its whole request is in. */
const requestIn = (stream: FakeStream): void => {
  stream.state.remoteClose = 1
  stream.emit('end')
}

/** grpc-js answers a unary call: headers and message written, the stream ended only once the message has gone out. */
const answer = (stream: FakeStream): void => {
  stream.respond({ ':status': 200 }, {})
  stream.write(Buffer.alloc(10))
}

useFakeClock()
afterEach(() => {
  for (const stream of open) {
    stream.closed = true
    stream.emit('close')
  }
  open.clear()
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
    const ended = watched(requestIn)
    const streaming = watched(requestIn, false)
    const held = watched((s) => (s.state.remoteClose = 1))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 5)
    expect([ended.sent, streaming.sent, held.sent]).toEqual([[], [], []])
  })

  it("keeps grpc-js's answer and closes the stream; leaves an answer under way to finish", async () => {
    const answered = watched((s) => Object.assign(s, { headersSent: true, writableEnded: true }))
    const answering = watched((s) => (s.headersSent = true))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect([answered.sent, answering.sent]).toEqual([['closed'], []])
  })

  it('resets a unary call whose answer has not gone out a limit after a sweep found it written, however long it ran first', async () => {
    const stream = watched(requestIn)
    // Handled for ten limits: not cut.
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 10)
    answer(stream)
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect(stream.sent).toEqual([undefined])
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect(stream.sent).toEqual([undefined, RESET])
  })

  it('leaves an answer that went out (the stream closed), and a server-streaming call, to grpc-js', async () => {
    const taken = watched(requestIn)
    const streaming = watched(requestIn, false)
    answer(taken)
    answer(streaming)
    taken.closed = true
    taken.emit('close')
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 3)
    expect([taken.sent, streaming.sent]).toEqual([[undefined], [undefined]])
  })
})
