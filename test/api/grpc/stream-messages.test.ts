// The read limit on a stream of many messages: a message is timed from its first byte until
// it is whole, wherever chunks split it; the time the server does not read the stream is not
// the client's; an answer that does not go out within the limit (the client takes none) ends
// the stream; a call answered already whose client stays open is closed. Each message's
// prefix is checked before grpc-js reads it: its size, and its compressed flag.
import { constants, type ServerHttp2Stream } from 'node:http2'
import { describe, expect, it, vi } from 'vitest'
import { readLimit } from '../../../src/api/grpc/read-limit.ts'
import { codeMetadata } from '../../../src/api/grpc/status.ts'
import { watchStreamMessages } from '../../../src/api/grpc/stream-messages.ts'
import { FakeStream, useFakeClock } from './fake-stream.ts'

const LIMIT = readLimit(1000)
const LIMITS = { read: LIMIT, maxReceiveBytes: 1000, tooLarge: codeMetadata('PAYLOAD_TOO_LARGE') }
const RESET = `reset ${constants.NGHTTP2_CANCEL}`

/** A stream grpc-js has taken (its 'data' listener is on), watched; `seen`: the chunks grpc-js's listener got on a stream still open. */
function streamed(uncompressed = true, seen: Buffer[] = []): FakeStream {
  const stream = new FakeStream()
  stream.on('data', (chunk: Buffer) => void (stream.closed || seen.push(chunk)))
  watchStreamMessages(stream as unknown as ServerHttp2Stream, LIMITS, uncompressed)
  return stream
}
const prefix = (length: number, flag = 0): Buffer => Buffer.from([flag, length >>> 24, (length >>> 16) & 255, (length >>> 8) & 255, length & 255])
const message = (length: number): Buffer => Buffer.concat([prefix(length), Buffer.alloc(length, 7)])

useFakeClock()

/** Left alone until the limit, then answered REQUEST_TIMEOUT (status 4) and closed. */
async function expectTimedOutAtLimit(stream: FakeStream): Promise<void> {
  await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
  expect(stream.sent).toEqual([])
  await vi.advanceTimersByTimeAsync(1)
  expect(stream.sent).toEqual(['4', 'closed'])
}

/** Left alone until the limit, then reset (RST_STREAM CANCEL: answers were sent, so no status can follow). */
async function expectResetAtLimit(stream: FakeStream): Promise<void> {
  await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
  expect(stream.sent).toEqual([])
  await vi.advanceTimersByTimeAsync(1)
  expect(stream.sent).toEqual([RESET])
}

/** An answer grpc-js writes: it waits until the client's window lets it go (wentOut()). */
const answer = (): Buffer => Buffer.alloc(79)

describe('the read limit on a stream of many messages', () => {
  it('times a message from its first byte until it is whole, across chunks and prefixes split anywhere', async () => {
    const stream = streamed()
    // Whole messages (one empty), then nothing for longer than the limit: nothing is timed.
    stream.emit('data', Buffer.concat([message(2), message(0)]))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 2)
    // A 300-byte message whose prefix is split after its second byte, and whose body comes in two parts, each in time.
    const m = message(300)
    stream.emit('data', m.subarray(0, 2))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
    stream.emit('data', m.subarray(2, 107))
    stream.emit('data', m.subarray(107))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect(stream.sent).toEqual([])
    // The next one stops after its prefix: answered at the limit from its first byte, then closed.
    stream.emit('data', prefix(10))
    await expectTimedOutAtLimit(stream)
  })

  it('gives a message begun in the chunk that ends the one before it its own time (a client whose chunks never end on a message)', async () => {
    const stream = streamed()
    const [first, second] = [message(10), message(10)]
    stream.emit('data', first.subarray(0, 8))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
    stream.emit('data', Buffer.concat([first.subarray(8), second.subarray(0, 6)]))
    await expectTimedOutAtLimit(stream)
  })

  it('does not count the time grpc-js is not reading the stream, and starts a message\'s time again when it reads again', async () => {
    const stream = streamed()
    stream.emit('data', prefix(10))
    stream.readableFlowing = false
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 3)
    expect(stream.sent).toEqual([])
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs / 2)
    stream.readableFlowing = true
    stream.emit('resume')
    await expectTimedOutAtLimit(stream)
  })

  it('resets a stream one of whose answers has waited the limit to go out (its client takes none), whether it has half-closed or not', async () => {
    for (const halfClosed of [false, true]) {
      const stream = streamed()
      stream.headersSent = true
      stream.write(answer())
      if (halfClosed) stream.emit('end')
      await expectResetAtLimit(stream)
    }
  })

  it('keeps a stream whose client takes its answers, however slowly: each answer that goes out gives the next its own time', async () => {
    const stream = streamed()
    stream.headersSent = true
    stream.write(answer())
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
    // It goes out (the client made room), and grpc-js writes the next.
    stream.wentOut()
    stream.write(answer())
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
    stream.wentOut()
    // Nothing waits to go out: a quiet stream is not timed.
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 3)
    expect(stream.sent).toEqual([])
    // An answer that does not go out is timed from when it was written.
    stream.write(answer())
    await expectResetAtLimit(stream)
  })

  it('resets a stream whose answer waits, though the server stopped reading a message half in (whose own time waits)', async () => {
    const stream = streamed()
    stream.headersSent = true
    stream.emit('data', Buffer.concat([message(3), prefix(10)]))
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs / 2)
    stream.write(answer())
    stream.readableFlowing = false
    await expectResetAtLimit(stream)
  })

  it('resets a stream already answering; closes one answered when its client still sends, or by the limit, and resets one whose status has not gone out by then', async () => {
    const answering = streamed()
    answering.headersSent = true
    answering.emit('data', Buffer.concat([message(3), prefix(10)]))
    // Answered with a status alone (trailers-only), the client still sending: closed at once.
    const sending = streamed()
    Object.assign(sending, { headersSent: true, writableEnded: true, sentHeaders: { 'grpc-status': '8' } })
    sending.emit('data', message(3))
    expect(sending.sent).toEqual(['closed'])
    // Answered with data, then its status (trailers): closing before 'finish' could cut them;
    // closed by the limit after it, whether the client still sends or not.
    const status = { headersSent: true, writableEnded: true, sentHeaders: { ':status': 200 }, sentTrailers: { 'grpc-status': '0' } }
    const trailing = streamed()
    Object.assign(trailing, status)
    trailing.emit('finish')
    trailing.emit('data', message(3))
    const silent = streamed()
    Object.assign(silent, status)
    silent.emit('finish')
    // Its status has not gone out the limit after 'finish' (it waits behind data the client does
    // not take), half-closed or not: reset, as a client can read no status.
    const stuck = streamed()
    Object.assign(stuck, { ...status, sentTrailers: undefined })
    stuck.emit('finish')
    const halfClosed = streamed()
    Object.assign(halfClosed, { ...status, sentTrailers: undefined, state: { remoteClose: 1 } })
    halfClosed.emit('finish')
    // Half-closed, and answered: closed by the protocol once the status goes (a status alone, at once).
    const done = streamed()
    Object.assign(done, { ...status, state: { remoteClose: 1 } })
    done.emit('finish')
    done.closed = true
    const statusOnly = streamed()
    Object.assign(statusOnly, { headersSent: true, writableEnded: true, sentHeaders: { 'grpc-status': '0' }, state: { remoteClose: 1 } })
    statusOnly.emit('finish')
    const all = [answering, trailing, silent, stuck, halfClosed, done, statusOnly]
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs - 1)
    expect(all.map((s) => s.sent)).toEqual([[], [], [], [], [], [], []])
    await vi.advanceTimersByTimeAsync(1)
    expect(all.map((s) => s.sent)).toEqual([[RESET], ['closed'], ['closed'], [RESET], [RESET], [], ['closed']])
  })

  it('does not close an answer before it is whole when a message timed before it comes due', async () => {
    // A message half in, then grpc-js ends the call (its deadline) with data out and its trailers to come.
    const stream = streamed()
    stream.emit('data', prefix(10))
    Object.assign(stream, { headersSent: true, writableEnded: true, sentHeaders: { ':status': 200 } })
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs * 2)
    expect(stream.sent).toEqual([])
    stream.emit('finish')
    stream.sentTrailers = { 'grpc-status': '4' }
    await vi.advanceTimersByTimeAsync(LIMIT.timeoutMs)
    expect(stream.sent).toEqual(['closed'])
  })

  it('takes data on a stream its client reset (RST_STREAM NO_ERROR) before any answer: node ends its side, and still delivers what grpc-js had paused', () => {
    const reset = streamed()
    Object.assign(reset, { closed: true, writableEnded: true })
    expect(() => reset.emit('data', message(3))).not.toThrow()
    // Taken as it is, not as a fault of the watch (which would destroy the stream).
    expect([reset.sent, reset.destroyed]).toEqual([[], false])
  })

  it('refuses a message over the size limit before grpc-js reads it, with its specserve-code, if nothing was answered; else leaves it to grpc-js', () => {
    const seen: Buffer[] = []
    const stream = streamed(true, seen)
    // The prefix split: refused once it is whole (1001 > 1000), in the chunk that completes it.
    const over = prefix(1001)
    stream.emit('data', Buffer.concat([message(3), over.subarray(0, 3)]))
    stream.emit('data', over.subarray(3))
    expect(stream.sent).toEqual(['8', 'closed'])
    expect(stream.sentHeaders).toMatchObject({ 'grpc-message': encodeURI('Received message larger than max (1001 vs 1000)'), 'specserve-code': 'PAYLOAD_TOO_LARGE' })
    expect(seen).toHaveLength(1) // grpc-js read the first chunk, not the one that completed the refused prefix
    // Answers are out: grpc-js's status, after them, ends the call.
    const answering = streamed()
    answering.headersSent = true
    answering.emit('data', prefix(1001))
    expect(answering.sent).toEqual([])
    // At the limit: taken.
    const at = streamed()
    at.emit('data', prefix(1000))
    expect(at.sent).toEqual([])
  })

  it('refuses a message whose compressed flag is set on a call without compression: INTERNAL before any answer, a reset after', () => {
    for (const flag of [1, 2, 255]) {
      const seen: Buffer[] = []
      const stream = streamed(true, seen)
      stream.emit('data', Buffer.concat([message(3), prefix(3, flag), Buffer.alloc(3)]))
      expect(stream.sent).toEqual(['13', 'closed'])
      expect(decodeURI(String(stream.sentHeaders!['grpc-message']))).toContain(`compressed flag ${flag}`)
      expect(seen).toEqual([])
    }
    const answering = streamed()
    answering.headersSent = true
    answering.emit('data', prefix(3, 1))
    expect(answering.sent).toEqual([RESET])
    // A call with a grpc-encoding: the flag is grpc-js's to read.
    const compressed = streamed(false)
    compressed.emit('data', Buffer.concat([prefix(3, 1), Buffer.alloc(3)]))
    expect(compressed.sent).toEqual([])
  })

  it('leaves alone a stream grpc-js did not take (a wrong content type): it reads nothing of it', () => {
    const stream = new FakeStream()
    watchStreamMessages(stream as unknown as ServerHttp2Stream, LIMITS, true)
    expect(stream.listenerCount('data')).toBe(0)
  })
})
