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
// Calls the fast unary path serves are watched there (fast-unary.ts, with their deadline);
// calls grpc-js serves are watched here, from the same hook, until their request ends.
import { status as Status, type Server } from '@grpc/grpc-js'
import type { ServerHttp2Stream } from 'node:http2'
import { GatewayError } from '../../errors.ts'
import { DeadlineSweep, type Expiring } from './deadline-sweep.ts'
import { closeAnswered, compressedFlagRefusal, errorStatus, refuse, respondStatus, type GrpcError } from './status.ts'

/** Calls whose request is still arriving, fast or grpc-js's, ended by one shared timer. */
export const reading = new DeadlineSweep<Expiring>()

/** How long a request may take, and what a call whose request came too slowly is answered (with its `specserve-code`): built once per server. */
export interface ReadLimit {
  readonly timeoutMs: number
  readonly status: GrpcError
}

export function readLimit(timeoutMs: number): ReadLimit {
  return { timeoutMs, status: errorStatus(new GatewayError('REQUEST_TIMEOUT', `the request did not arrive within ${timeoutMs} ms (server.request_timeout_ms)`)) }
}

/**
 * The paths of the methods registered on `server` from now on that take a stream of request
 * messages (client-streaming, bidi): there the read limit times each message, not the request
 * (stream-messages.ts). Read from grpc-js's public `register`, which addService calls for
 * every method.
 */
export function streamingRequestMethods(server: Server): ReadonlySet<string> {
  const paths = new Set<string>()
  const register = server.register.bind(server) as (...args: Parameters<Server['register']>) => boolean
  server.register = ((...args: Parameters<Server['register']>) => {
    const [path, , , , type] = args
    if (type === 'clientStream' || type === 'bidi') paths.add(path)
    return register(...args)
  }) as Server['register']
  return paths
}

/** A call grpc-js serves, watched until its request has ended (or the stream closed). */
class GrpcJsRead implements Expiring {
  readonly due: number
  private readonly stream: ServerHttp2Stream
  private readonly limit: ReadLimit

  constructor(stream: ServerHttp2Stream, due: number, limit: ReadLimit) {
    this.stream = stream
    this.due = due
    this.limit = limit
  }

  expire(): void {
    const stream = this.stream
    // The whole request is in, its 'end' held back while grpc-js decompresses it: it came in time.
    if (stream.destroyed || stream.closed || stream.state.remoteClose) return
    // Unless grpc-js answered it already (its deadline, a message over the size limit): that answer stands.
    answerTooSlow(stream, this.limit)
    // An answer under way is left to finish; none can start before the request's end, and
    // grpc-js's early answers (a deadline, a refused message, an unknown path) are whole.
    if (stream.writableEnded) closeAnswered(stream)
  }
}

/** Answers a call whose request came too slowly with the limit's status (unless it was answered already). */
export function answerTooSlow(stream: ServerHttp2Stream, limit: ReadLimit): void {
  const status = limit.status
  respondStatus(stream, status.code as number, status.details as string, status.metadata)
}

/** Watches a call grpc-js serves: its request must have ended by `due`, or it is answered (if it was not) and closed. */
export function watchGrpcJsRead(stream: ServerHttp2Stream, due: number, limit: ReadLimit): void {
  const read = new GrpcJsRead(stream, due, limit)
  const done = (): void => reading.delete(read)
  reading.add(read)
  stream.once('end', done)
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
