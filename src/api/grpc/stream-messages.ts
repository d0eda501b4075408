// The read limit on a stream of many request messages (PredictStream, ModelStreamInfer,
// reflection): such a stream may stay open between messages as long as its client likes, but
// a message, once its first byte is in, must be whole within server.request_timeout_ms, or
// the call ends; a client could otherwise hold each stream it opens with a message half sent,
// up to grpc_max_receive_bytes buffered. The stream is framed as it arrives (the bytes grpc-js
// decodes, seen alongside it). Time the server does not read the stream is not the client's:
// grpc-js stops reading while the handler holds messages it has not taken, as it does while
// the client does not take its answers, and the message's time starts again when reading does.
//
// The answers have the same limit, here and on a server-streaming call (health Watch, whose
// one request message read-limit.ts times as a unary call's): grpc-js writes them one at a
// time, each once the one before it has gone, which takes room in the client's flow-control
// window. An answer not all gone the limit after it was written (or a status, after the
// call's end) means the client does not take them, or too slowly, and the stream is reset;
// else a client that stops reading (having half-closed, or not) would hold the stream, and
// what the server buffered for it, for as long as it likes.
//
// A call cut before anything was answered gets the status as a call with one message does
// (DEADLINE_EXCEEDED, `REQUEST_TIMEOUT`); one with answers sent can no longer get trailers
// past grpc-js, and is reset (RST_STREAM CANCEL: the client sees CANCELLED). Either way
// grpc-js sees the stream close and cancels the call's runs. A call answered already (a
// refusal, its deadline, the handler's end) whose client has not half-closed is closed then
// too: at once if its answer is whole (trailers-only) and the client still sends, else once
// the limit has passed since its answer was written ('finish': closing sooner could cut
// grpc-js's trailers, sent after the last data).
//
// Each message's prefix is checked here too, before grpc-js reads it (our 'data' listener
// runs first): one over grpc_max_receive_bytes is refused as grpc-js would refuse it, but
// with its `specserve-code` (PAYLOAD_TOO_LARGE), which grpc-js cannot add; one whose
// compressed flag is set on a call without compression is refused INTERNAL, where grpc-js
// would read its bytes as they are. Before any answer the refusal is the call's status (and
// the stream is closed); after one, a status can only follow grpc-js's answers: grpc-js's own
// RESOURCE_EXHAUSTED ends a call whose message is too large, and a flagged message resets
// the stream (the client sees CANCELLED).
import type { Metadata } from '@grpc/grpc-js'
import { constants, type ServerHttp2Stream } from 'node:http2'
import type { Expiring } from './deadline-sweep.ts'
import { answerTooSlow, reading, type ReadLimit } from './read-limit.ts'
import { closeAnswered, prefixRefusal, refuse } from './status.ts'

/** gRPC's message prefix: a compressed flag and a 4-byte big-endian length. */
const PREFIX_BYTES = 5

/** What the messages of a stream of many are held to: built once per server. */
export interface MessageLimits {
  /** How long a message may take to arrive once begun (server.request_timeout_ms). */
  readonly read: ReadLimit
  /** grpc_max_receive_bytes, as grpc-js is given it. */
  readonly maxReceiveBytes: number
  /** The `specserve-code` of a message over it (PAYLOAD_TOO_LARGE). */
  readonly tooLarge: Metadata
}

class StreamMessages implements Expiring {
  /** When the sweep looks at the stream again: the earliest of the times below (each set to now + the limit, so a later one never comes first). */
  due = 0
  private readonly stream: ServerHttp2Stream
  private readonly limit: ReadLimit
  private readonly limits: MessageLimits
  /** The call has no grpc-encoding (or identity): every message's compressed flag must be 0. */
  private readonly uncompressed: boolean
  /** Bytes of the current message's prefix read, its compressed flag, and the length it gives so far. */
  private prefix = 0
  private flag = 0
  private length = 0
  /** Bytes of the current message's body still to come. */
  private remaining = 0
  /** When the message half in must be whole; 0 when none is. */
  private messageDue = 0
  /** When a call answered (its answer all written, 'finish') is closed if still open; 0 before. */
  private answeredDue = 0
  /** When the last answer was written: the one before it had left by then. */
  private wroteAt = 0
  private watched = false

  constructor(stream: ServerHttp2Stream, limits: MessageLimits, uncompressed: boolean) {
    this.stream = stream
    this.limit = limits.read
    this.limits = limits
    this.uncompressed = uncompressed
  }

  read(chunk: Buffer): void {
    // Answered: what the client still sends is not wanted (a longer answer is left to answered()).
    if (this.stream.writableEnded) return void (trailersOnly(this.stream) && closeAnswered(this.stream))
    const size = chunk.length
    let at = 0
    let begun = false
    while (at < size) {
      if (this.remaining > 0) {
        const body = Math.min(this.remaining, size - at)
        this.remaining -= body
        at += body
        continue
      }
      if (this.prefix === 0) {
        begun = true
        this.flag = chunk[at] as number
      } else this.length = this.length * 256 + (chunk[at] as number)
      at++
      if (++this.prefix === PREFIX_BYTES) {
        if (this.refused()) return
        this.remaining = this.length
        this.prefix = this.length = 0
      }
    }
    if (this.prefix === 0 && this.remaining === 0) this.messageDue = 0
    // The message left half in began in this chunk (after others, maybe): its time starts now.
    else if (begun) this.watch((this.messageDue = Date.now() + this.limit.timeoutMs))
  }

  /**
   * Refuses the message whose prefix is in, if it must be (see the top of this file): true
   * when the call is answered or reset so. By its size first, as grpc-js and grpc-go check it.
   */
  private refused(): boolean {
    const stream = this.stream
    const refusal = prefixRefusal(this.flag, this.length, this.limits.maxReceiveBytes, this.uncompressed)
    if (refusal === undefined) return false
    if (stream.headersSent) {
      // Answers are out: for a message too large, grpc-js's status, in the trailers after
      // them, is the one left to send; a flagged one resets the stream.
      if (refusal.tooLarge) return false
      stream.close(constants.NGHTTP2_CANCEL)
      return true
    }
    // Closed at once: grpc-js, whose listener comes next, sees the stream closed and reads nothing more of it.
    refuse(stream, refusal.code, refusal.details, refusal.tooLarge ? this.limits.tooLarge : undefined)
    return true
  }

  /** The server reads the stream again (grpc-js had stopped): a message half in gets its time anew. */
  resumed(): void {
    if (this.messageDue !== 0) this.messageDue = Date.now() + this.limit.timeoutMs
  }

  /** An answer is written (grpc-js writes the next only once the one before has left). */
  wrote(): void {
    this.watch((this.wroteAt = Date.now()) + this.limit.timeoutMs)
  }

  /** The client half-closed: no message is half in any more (grpc-js refuses a cut one). */
  ended(): void {
    this.messageDue = 0
  }

  /** The call is answered, all of it written: its client has the limit's time to take the status and close, or be closed. */
  answered(): void {
    const stream = this.stream
    if (stream.closed || stream.destroyed) return
    this.watch((this.answeredDue = Date.now() + this.limit.timeoutMs))
  }

  stop(): void {
    this.watched = false
    reading.delete(this)
  }

  expire(now: number): void {
    const stream = this.stream
    this.watched = false
    if (stream.destroyed || stream.closed) return
    const limit = this.limit.timeoutMs
    // An answer has not all gone within the limit: the client does not take it. Its response
    // headers are out, so a reset (the client sees CANCELLED).
    if (stream.writableLength > 0 && now >= this.wroteAt + limit) return void stream.close(constants.NGHTTP2_CANCEL)
    if (stream.writableEnded) {
      // Answered: closed once the answer is whole (a status alone is once queued) and, after
      // 'finish', the limit has passed; a message half in is not wanted any more.
      this.messageDue = 0
      if (trailersOnly(stream)) return closeAnswered(stream)
      if (this.answeredDue !== 0 && now >= this.answeredDue) {
        // Its status has not gone out: it waits behind the last data, for room in a window the
        // client does not give. Without a status, a reset (CANCELLED) is what the client can read.
        return void (stream.sentTrailers === undefined ? stream.close(constants.NGHTTP2_CANCEL) : closeAnswered(stream))
      }
    } else if (this.messageDue !== 0 && now >= this.messageDue) {
      // Not read meanwhile: the message gets its time anew once reading resumes.
      if (stream.readableFlowing === false) this.messageDue = now + limit
      else if (stream.headersSent) return void stream.close(constants.NGHTTP2_CANCEL)
      else {
        answerTooSlow(stream, this.limit)
        return closeAnswered(stream)
      }
    }
    let next = Infinity
    if (this.messageDue !== 0) next = this.messageDue
    if (this.answeredDue > now && this.answeredDue < next) next = this.answeredDue
    if (stream.writableLength > 0 && this.wroteAt + limit < next) next = this.wroteAt + limit
    if (next !== Infinity) this.watch(next)
  }

  /** Into the sweep for `at`, unless in it already: then for a time no later (all are now + the limit when set). */
  private watch(at: number): void {
    if (this.watched) return
    this.watched = true
    this.due = at
    reading.add(this)
  }
}

/**
 * The stream's answer was a status alone (a trailers-only response): whole once queued. A
 * stream that ended without an answer (its client reset it) has no sent headers at all.
 */
const trailersOnly = (stream: ServerHttp2Stream): boolean => (stream.sentHeaders as ServerHttp2Stream['sentHeaders'] | undefined)?.['grpc-status'] !== undefined

/**
 * Watches the messages of a stream of many, once grpc-js has taken the stream (and paused it,
 * so that ours does not start the flow). One grpc-js did not take (a wrong content type) is
 * left alone: nothing reads it, and node:http2 closes it once answered. `uncompressed`: the
 * call has no grpc-encoding, or identity.
 */
export function watchStreamMessages(stream: ServerHttp2Stream, limits: MessageLimits, uncompressed: boolean): void {
  if (stream.listenerCount('data') === 0) return
  const messages = new StreamMessages(stream, limits, uncompressed)
  // The one way to see an answer go out: grpc-js writes each through the stream's write.
  const write = stream.write
  stream.write = function (this: ServerHttp2Stream, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    messages.wrote()
    return (write as (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean).call(this, chunk, encoding, callback)
  } as ServerHttp2Stream['write']
  // Before grpc-js's listener: a message refused here never reaches grpc-js.
  stream.prependListener('data', (chunk: Buffer) => {
    // A throw here would escape grpc-js (it runs in node's stream flow) and end the process: a
    // fault of ours ends this call instead.
    try {
      messages.read(chunk)
    } catch {
      stream.destroy()
    }
  })
  stream.on('resume', () => messages.resumed())
  stream.once('finish', () => messages.answered())
  stream.once('end', () => messages.ended())
  stream.once('close', () => messages.stop())
}
