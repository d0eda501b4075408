// The read limit on a stream of many request messages (PredictStream, ModelStreamInfer,
// reflection): such a stream may stay open between messages as long as its client likes, but
// a message, once its first byte is in, must be whole within server.request_timeout_ms, or
// the call ends; a client could otherwise hold each stream it opens with a message half sent,
// up to grpc_max_receive_bytes buffered. The stream is framed as it arrives (the bytes grpc-js
// decodes, seen alongside it). Time the server does not read the stream is not the client's:
// grpc-js stops reading while the handler holds messages it has not taken, and the message's
// time starts again when reading does. Unless reading stopped because the client does not
// take its answers (one waits for the window the client gives): that client has the limit's
// time to take some, and lets the server read again, or the stream is reset. Else it would
// hold the stream, and what the server buffered for it, for as long as it likes.
//
// A call cut before anything was answered gets the status as a call with one message does
// (DEADLINE_EXCEEDED, `REQUEST_TIMEOUT`); one with answers sent can no longer get trailers
// past grpc-js, and is reset (RST_STREAM CANCEL: the client sees CANCELLED). Either way
// grpc-js sees the stream close and cancels the call's runs. A call answered already (a
// refusal, its deadline, the handler's end) whose client has not half-closed is closed then
// too: at once if its answer is whole (trailers-only) and the client still sends, else once
// the limit has passed since its answer was written ('finish': closing sooner could cut
// grpc-js's trailers, sent after the last data).
import { constants, type ServerHttp2Stream } from 'node:http2'
import type { Expiring } from './deadline-sweep.ts'
import { answerTooSlow, reading, type ReadLimit } from './read-limit.ts'
import { closeAnswered } from './status.ts'

/** gRPC's message prefix: a compressed flag and a 4-byte big-endian length. */
const PREFIX_BYTES = 5

class StreamMessages implements Expiring {
  due = 0
  private readonly stream: ServerHttp2Stream
  private readonly limit: ReadLimit
  /** Bytes of the current message's prefix read, and the length it gives so far. */
  private prefix = 0
  private length = 0
  /** Bytes of the current message's body still to come. */
  private remaining = 0
  /** In the sweep: a message is half in (unless the call was answered before it came due), or the call is answered and its client still open. */
  private watched = false
  /** The answer is all written ('finish'): grpc-js's trailers, if any, went out right after it. */
  private finished = false
  /** Since when the server has not read the stream while an answer waited for the client to take it; 0 if it has since. */
  private stalledSince = 0

  constructor(stream: ServerHttp2Stream, limit: ReadLimit) {
    this.stream = stream
    this.limit = limit
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
      if (this.prefix === 0) begun = true
      else this.length = this.length * 256 + (chunk[at] as number)
      at++
      if (++this.prefix === PREFIX_BYTES) {
        this.remaining = this.length
        this.prefix = this.length = 0
      }
    }
    if (this.prefix > 0 || this.remaining > 0) {
      // The message left half in began in this chunk (after others, maybe): its time starts now.
      if (begun) this.due = Date.now() + this.limit.timeoutMs
      this.watch()
    } else if (this.watched && this.stalledSince === 0) {
      this.watched = false
      reading.delete(this)
    }
  }

  /** The server reads the stream again (grpc-js had stopped): a message half in gets its time anew. */
  resumed(): void {
    this.stalledSince = 0
    if (this.watched && !this.stream.writableEnded) this.due = Date.now() + this.limit.timeoutMs
  }

  /**
   * The server stops reading the stream: if an answer waits for the client to take it (the
   * flow-control window it gave is used up), the client has the limit's time to take answers,
   * which lets the server read again.
   */
  paused(): void {
    const stream = this.stream
    if (this.stalledSince !== 0 || stream.writableLength === 0 || stream.closed || stream.destroyed) return
    this.stalledSince = Date.now()
    // Watched already (a message half in, an answer): its time comes first, and expire() re-arms for this.
    if (this.watched) return
    this.due = this.stalledSince + this.limit.timeoutMs
    this.watch()
  }

  /** The call is answered (its status sent): a client still open has the limit's time to go. */
  answered(): void {
    this.finished = true
    const stream = this.stream
    if (stream.closed || stream.destroyed || stream.state.remoteClose) return
    this.due = Date.now() + this.limit.timeoutMs
    this.watch()
  }

  stop(): void {
    this.watched = false
    reading.delete(this)
  }

  expire(now: number): void {
    const stream = this.stream
    this.watched = false
    if (stream.destroyed || stream.closed) return
    if (this.stalledSince !== 0 && stream.readableFlowing === false && stream.writableLength > 0) {
      // Its answers have waited the limit for a client that does not take them: the response
      // headers are out, so a reset (the client sees CANCELLED).
      const due = this.stalledSince + this.limit.timeoutMs
      if (now >= due) return void stream.close(constants.NGHTTP2_CANCEL)
      // Not read meanwhile: a message half in waits with it; an answered call is seen to then.
      this.due = due
      return this.watch()
    }
    // Answered: closed once the answer is whole; a timer armed before 'finish' leaves it to answered().
    if (stream.writableEnded) return void ((this.finished || trailersOnly(stream)) && closeAnswered(stream))
    const halfIn = this.prefix > 0 || this.remaining > 0
    if (stream.readableFlowing === false) {
      // Not read meanwhile: a message half in gets its time anew once reading resumes.
      if (!halfIn) return
      this.due = now + this.limit.timeoutMs
      return this.watch()
    }
    if (!halfIn) return // watched only while its answers waited, and the client took them
    if (stream.headersSent) return void stream.close(constants.NGHTTP2_CANCEL)
    answerTooSlow(stream, this.limit)
    closeAnswered(stream)
  }

  private watch(): void {
    if (this.watched) return
    this.watched = true
    reading.add(this)
  }
}

/**
 * The stream's answer was a status alone (a trailers-only response): whole once queued. A
 * stream that ended without an answer (its client reset it) has no sent headers at all.
 */
const trailersOnly = (stream: ServerHttp2Stream): boolean => (stream.sentHeaders as ServerHttp2Stream['sentHeaders'] | undefined)?.['grpc-status'] !== undefined

/**
 * Watches the messages of a stream of many, once grpc-js has taken the stream (its listener
 * first, so that ours does not start the flow). One grpc-js did not take (a wrong content
 * type) is left alone: nothing reads it, and node:http2 closes it once answered.
 */
export function watchStreamMessages(stream: ServerHttp2Stream, limit: ReadLimit): void {
  if (stream.listenerCount('data') === 0) return
  const messages = new StreamMessages(stream, limit)
  const stop = (): void => messages.stop()
  stream.on('data', (chunk: Buffer) => {
    // A throw here would escape grpc-js (it runs in node's stream flow) and end the process: a
    // fault of ours ends this call instead.
    try {
      messages.read(chunk)
    } catch {
      stream.destroy()
    }
  })
  stream.on('resume', () => messages.resumed())
  stream.on('pause', () => messages.paused())
  stream.once('finish', () => messages.answered())
  stream.once('end', stop)
  stream.once('close', stop)
}
