// A gRPC call with one request message (unary or server-streaming; also one to a path no
// method serves, which grpc-js answers at once) must have sent all of it, and half-closed,
// within server.request_timeout_ms, as a REST request must: a client that opens calls and
// never finishes them would otherwise hold each one's buffer and stream slot for as long as
// its connection lives (a call without a deadline has nothing else to end it, and a
// deadline can be days). Such a call is answered DEADLINE_EXCEEDED (`REQUEST_TIMEOUT`)
// and its stream closed (RST_STREAM NO_ERROR after the answer: the rest of the request is
// not wanted); one answered already (its deadline, a message over the size limit) whose
// client still sends is closed then too. Streams of many messages (PredictStream,
// ModelStreamInfer, reflection) are open-ended by nature: there each message, once its first
// byte is in, must be whole within the same time instead (stream-messages.ts).
//
// The answer has the same limit: one the client does not take (a flow-control window it
// never opens) would otherwise hold the stream, the answer buffered for it, a compressed
// call's place (compressed-calls.ts) and a shutdown's drain for as long as it likes. A unary
// answer not gone out (its stream closed) a limit after the sweep finds it written, so
// between one and two limits after it was, resets the stream (RST_STREAM CANCEL: its
// headers are out, so the client sees CANCELLED). A call still being handled is not cut:
// however long its run, it is looked at again each limit. The answers of a server-streaming
// call (health Watch) are timed each as a stream of many's are (stream-messages.ts).
//
// Calls the fast unary path serves are watched there (fast-unary.ts, with their deadline);
// calls grpc-js serves are watched here, from the same hook: until their request ends, and
// a unary one until its stream closes. Whether a grpc-js call is answered is read off its
// stream on each sweep (no listener or timer per call for it): grpc-js writes a unary
// answer's headers and message at once, and ends the stream only once the message has gone
// out, so a sent header, not an ended stream, says the answer is written.
import { status as Status, type Server } from '@grpc/grpc-js'
import type { ServerHttp2Stream } from 'node:http2'
import { GatewayError } from '../../errors.ts'
import { DeadlineSweep, type Expiring } from './deadline-sweep.ts'
import { closeAnswered, compressedFlagRefusal, errorStatus, refuse, resetUntaken, respondStatus, type GrpcError } from './status.ts'

/** Calls whose request is still arriving, or whose answer has to go out, fast or grpc-js's: watched with one shared timer. */
export const reading = new DeadlineSweep<Expiring>()

/** How long a request may take, and what a call whose request came too slowly is answered (with its `specserve-code`): built once per server. */
export interface ReadLimit {
  readonly timeoutMs: number
  readonly status: GrpcError
}

export function readLimit(timeoutMs: number): ReadLimit {
  return { timeoutMs, status: errorStatus(new GatewayError('REQUEST_TIMEOUT', `the request did not arrive within ${timeoutMs} ms (server.request_timeout_ms)`)) }
}

/** The paths of the methods that take or give a stream of messages. */
export interface StreamingMethods {
  /** Client-streaming and bidi: there the read limit times each request message, not the request (stream-messages.ts). */
  readonly requests: ReadonlySet<string>
  /** Server-streaming (one request, many answers): each answer is timed as a stream of many's are. */
  readonly answers: ReadonlySet<string>
}

/**
 * The streaming methods registered on `server` from now on. Read from grpc-js's public
 * `register`, which addService calls for every method.
 */
export function streamingMethods(server: Server): StreamingMethods {
  const requests = new Set<string>()
  const answers = new Set<string>()
  const register = server.register.bind(server) as (...args: Parameters<Server['register']>) => boolean
  server.register = ((...args: Parameters<Server['register']>) => {
    const [path, , , , type] = args
    if (type === 'clientStream' || type === 'bidi') requests.add(path)
    else if (type === 'serverStream') answers.add(path)
    return register(...args)
  }) as Server['register']
  return { requests, answers }
}

/** A call grpc-js serves, watched until its request has ended, or, unary, until its stream closes. */
class GrpcJsRead implements Expiring {
  due: number
  private readonly stream: ServerHttp2Stream
  private readonly limit: ReadLimit
  private readonly unary: boolean
  /** A sweep found its answer written: the next one resets the stream if still open. */
  private answered = false

  constructor(stream: ServerHttp2Stream, due: number, limit: ReadLimit, unary: boolean) {
    this.stream = stream
    this.due = due
    this.limit = limit
    this.unary = unary
  }

  expire(now: number): void {
    const stream = this.stream
    if (stream.destroyed || stream.closed) return
    // The whole request is in (its 'end' maybe held back while grpc-js decompresses it): it came in time.
    if (stream.state.remoteClose) return this.unary ? this.answerWatched(now) : undefined
    // Unless grpc-js answered it already (its deadline, a message over the size limit): that answer stands.
    answerTooSlow(stream, this.limit)
    // An answer under way is left to finish; none can start before the request's end, and
    // grpc-js's early answers (a deadline, a refused message, an unknown path) are whole.
    if (stream.writableEnded) closeAnswered(stream)
  }

  /** A unary call whose request is in: its answer, once written, has a limit to go out (the stream to close). */
  private answerWatched(now: number): void {
    if (this.answered) return resetUntaken(this.stream)
    // Request in and answer gone out, the stream would have closed: still open with its headers
    // sent, the answer is stuck or was written since the last look, which gets the limit from now.
    this.answered = this.stream.headersSent
    this.due = now + this.limit.timeoutMs
    reading.add(this)
  }
}

/** Answers a call whose request came too slowly with the limit's status (unless it was answered already). */
export function answerTooSlow(stream: ServerHttp2Stream, limit: ReadLimit): void {
  const status = limit.status
  respondStatus(stream, status.code as number, status.details as string, status.metadata)
}

/**
 * Watches a call grpc-js serves: its request must have ended by `due`, or it is answered (if
 * it was not) and closed; and, `unary` (one request, one answer), its answer must go out.
 */
export function watchGrpcJsRead(stream: ServerHttp2Stream, due: number, limit: ReadLimit, unary: boolean): void {
  const read = new GrpcJsRead(stream, due, limit, unary)
  const done = (): void => reading.delete(read)
  reading.add(read)
  if (!unary) stream.once('end', done)
  stream.once('close', done)
}

/**
 * Watches a one-message call grpc-js serves without compression (no grpc-encoding, or
 * identity): its message's compressed flag, the stream's first byte, must be 0. grpc-js reads
 * a flagged message's bytes as they are; it is refused INTERNAL instead (compressedFlagRefusal),
 * from a listener that runs before grpc-js's, which then sees the stream closed. A second
 * message grpc-js refuses itself. Only once grpc-js has taken the stream: one it answered at
 * once (a wrong content type, an unknown method) reads nothing.
 */
export function watchCompressedFlag(stream: ServerHttp2Stream): void {
  if (stream.listenerCount('data') > 0) stream.prependOnceListener('data', firstChunk)
}

/** The stream's first chunk (`this`: the stream, as EventEmitter calls it: no closure per call). */
function firstChunk(this: ServerHttp2Stream, chunk: Buffer): void {
  if (chunk.length === 0) return void this.prependOnceListener('data', firstChunk)
  const flag = chunk[0] as number
  // Answered already (its deadline, the read limit): that answer stands.
  if (flag === 0 || this.headersSent) return
  refuse(this, Status.INTERNAL, compressedFlagRefusal(flag))
}
