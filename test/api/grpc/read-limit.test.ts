// A call grpc-js serves, watched by the read limit: what it does at its due time depends on
// how far the call got. Its whole request in (END_STREAM received) counts as in time even
// while grpc-js holds back the stream's 'end' to decompress the message.
import type { ServerHttp2Stream } from 'node:http2'
import { describe, expect, it, vi } from 'vitest'
import { readLimit, watchGrpcJsRead } from '../../../src/api/grpc/read-limit.ts'
import { FakeStream, useFakeClock } from './fake-stream.ts'

const LIMIT = readLimit(1000)

function watched(setUp: (stream: FakeStream) => void = () => {}): FakeStream {
  const stream = new FakeStream()
  setUp(stream)
  watchGrpcJsRead(stream as unknown as ServerHttp2Stream, Date.now() + LIMIT.timeoutMs, LIMIT)
  return stream
}

useFakeClock()

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
