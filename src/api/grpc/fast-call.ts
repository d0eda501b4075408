// One call on the fast unary path (fast-unary.ts): its one request message read from the
// HTTP/2 stream, the handler run, the answer (or status) written back on the stream.
import { Metadata, status as Status, type sendUnaryData } from '@grpc/grpc-js'
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import { TLSSocket, type PeerCertificate } from 'node:tls'
import { MALFORMED, type MethodCodec } from './call.ts'
import type { CompressedCalls } from './compressed-calls.ts'
import { reading, type StreamingMethods } from './read-limit.ts'
import { answerWritten } from '../../unsent-answers.ts'
import type { MessageLimits } from './stream-messages.ts'
import { closeAnswered, prefixRefusal, resetUntaken, respondStatus, type GrpcError, type PrefixRefusal } from './status.ts'

/** One method served on this path: its codec (the one grpc-js is given) and its grpc-js handler. */
export interface FastMethod extends MethodCodec<unknown, never> {
  readonly handler: (call: FastCall, callback: sendUnaryData<unknown>) => void
}

/** `read` here bounds a call's whole request, not each message (read-limit.ts). */
export interface FastLimits extends MessageLimits {
  readonly maxSendBytes: number
  /** The paths whose calls carry a stream of request messages, or of answers: the read limit times each message there (read-limit.ts). */
  readonly streaming: StreamingMethods
  /** The `specserve-code` of a call whose request is still arriving at its deadline (DEADLINE_EXCEEDED). */
  readonly deadlineExceeded: Metadata
  /** The calls with message compression open at once, which grpc-js serves: bounded (compressed-calls.ts). */
  readonly compressed: CompressedCalls
}

const OK_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity,deflate,gzip', 'grpc-encoding': 'identity' }
const OK_TRAILERS = { 'grpc-status': '0', 'grpc-message': 'OK' }
const RESPOND_OPTIONS = { waitForTrailers: true }

/** A listener that does nothing (an 'error' seen as 'close' instead). */
export const ignore = (): void => {}

function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS)
}

/**
 * One call: reads its one request message, runs the handler, writes the answer or the
 * status. What grpc-js's ServerUnaryCall offers the handlers (`request`, `metadata`,
 * `getDeadline()`, `cancelled` and the 'cancelled' event) is all servePredict reads.
 */
export class FastCall {
  request: unknown = undefined
  cancelled = false
  private chunks: Buffer[] = []
  private received = 0
  /** The message size its prefix declares, once 5 bytes are in. */
  private declared = -1
  private answered = false
  /** Its answer is written: watched until its stream closes (all of it gone out), as `due` then says. */
  private sent = false
  private onCancel: (() => void) | undefined = undefined
  private meta: Metadata | undefined = undefined
  private readonly stream: ServerHttp2Stream
  private readonly headers: IncomingHttpHeaders
  private readonly method: FastMethod
  readonly deadline: number
  /**
   * When the call ends if its request is still arriving: its deadline, or the read limit's
   * end if sooner (one shared timer, where grpc-js arms one per call). Once its request is
   * in, a call's run is bounded by its budget (servePredict); once answered, its answer must
   * have gone out within the read limit.
   */
  due: number
  private readonly limits: FastLimits

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, method: FastMethod, deadline: number, due: number, limits: FastLimits) {
    this.stream = stream
    this.headers = headers
    this.method = method
    this.deadline = deadline
    this.due = due
    this.limits = limits
    stream.once('error', ignore) // a client gone mid-call is seen as 'close'
    stream.once('close', () => this.closed())
    stream.on('data', (chunk: Buffer) => this.data(chunk))
    stream.once('end', () => this.end())
    reading.add(this)
  }

  /**
   * Its deadline, or the read limit, has come while its request was still arriving (or after
   * it was refused, with the client still sending): answered if it was not, and its stream
   * closed, so a client that never half-closes holds no stream slot. Or its answer has not
   * all gone out within the read limit: its stream is reset.
   */
  expire(now: number): void {
    // The client does not take its answer: it would hold it as long as it likes.
    if (this.sent) return resetUntaken(this.stream)
    if (now >= this.deadline) this.fail(Status.DEADLINE_EXCEEDED, 'Deadline exceeded', this.limits.deadlineExceeded)
    else {
      const status = this.limits.read.status
      this.fail(status.code as number, status.details as string, status.metadata)
    }
    closeAnswered(this.stream)
  }

  /** The request headers as grpc-js Metadata; built only if read (trace propagation). */
  get metadata(): Metadata {
    return (this.meta ??= Metadata.fromHttp2Headers(this.headers))
  }

  getDeadline(): number {
    return this.deadline
  }

  /** The verified client certificate, as grpc-js's call gives it: only on a TLS connection whose handshake verified it. */
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: PeerCertificate } {
    const socket = this.stream.session?.socket
    if (!(socket instanceof TLSSocket) || !socket.authorized) return {}
    const certificate = socket.getPeerCertificate()
    return { transportSecurityType: 'ssl', sslPeerCertificate: certificate.raw ? certificate : undefined }
  }

  /** A unary call's errors go to its callback; nothing listens for 'error' (the guard emits it on streams only). */
  emit(): boolean {
    return false
  }

  once(event: 'cancelled', listener: () => void): this {
    if (event === 'cancelled') this.onCancel = listener
    return this
  }

  private data(chunk: Buffer): void {
    if (this.answered) return
    this.received += chunk.length
    this.chunks.push(chunk)
    const max = this.limits.maxReceiveBytes
    // The size is known from the prefix: an oversized message is refused before it is buffered.
    if (this.declared === -1) {
      if (this.received < 5) return
      const head = (this.chunks[0] as Buffer).length >= 5 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks)
      this.declared = head.readUInt32BE(1)
      // By its size first; this path serves calls without compression only: the flag must be 0.
      const refusal = prefixRefusal(head[0] as number, this.declared, max, true)
      if (refusal !== undefined) return this.refuseMessage(refusal)
    }
    // A second message is refused once its prefix is in (by its size first, as grpc-js does), so
    // no more than one message is ever held, whether or not the client ever half-closes.
    if (this.received - 5 - this.declared < 5) return
    const next = Buffer.concat(this.chunks).readUInt32BE(5 + this.declared + 1)
    // By its size alone: a second message is refused either way.
    const refusal = prefixRefusal(0, next, max, false)
    if (refusal !== undefined) this.refuseMessage(refusal)
    else this.fail(Status.UNIMPLEMENTED, `Received a second request message for server streaming method ${this.headers[':path']}`)
  }

  private end(): void {
    reading.delete(this)
    if (this.answered || this.cancelled) return
    const bytes = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks)
    this.chunks = []
    const size = this.declared
    if (size === -1 || bytes.length < 5 + size) return this.fail(Status.UNIMPLEMENTED, `Received no request message for server streaming method ${this.headers[':path']}`)
    if (bytes.length > 5 + size) return this.fail(Status.UNIMPLEMENTED, `Received a second request message for server streaming method ${this.headers[':path']}`)
    try {
      this.request = this.method.decode(bytes.subarray(5))
    } catch (err) {
      // As tolerantService does: the handler answers INVALID_ARGUMENT (BAD_REQUEST).
      this.request = { [MALFORMED]: (err as Error).message }
    }
    try {
      this.method.handler(this, (err, value) => this.answer(err as GrpcError | null, value))
    } catch {
      // A handler bug: the call fails, the server goes on (grpc-js does the same).
      this.fail(Status.UNKNOWN, 'Unknown error')
    }
  }

  private answer(err: GrpcError | null, value: unknown): void {
    if (this.answered || this.cancelled) return
    // As grpc-js reads a handler's error (serverErrorToStatus); ours always carry a code and details.
    if (err) return this.fail(Number.isInteger(err.code) ? (err.code as number) : Status.UNKNOWN, (Number.isInteger(err.code) ? err.details : undefined) ?? (err as { message?: string }).message ?? 'Unknown Error', err.metadata)
    let framed: Buffer
    try {
      framed = this.method.encode(value as never, true)
    } catch {
      return this.fail(Status.INTERNAL, 'Error serializing response')
    }
    if (framed.length - 5 > this.limits.maxSendBytes) return this.fail(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${framed.length} vs. ${this.limits.maxSendBytes})`)
    this.answered = true
    this.release()
    const stream = this.stream
    if (stream.destroyed || stream.closed) return
    try {
      stream.respond(OK_HEADERS, RESPOND_OPTIONS)
      stream.once('wantTrailers', sendOkTrailers)
      stream.end(framed)
      answerWritten()
      this.sent = true
      this.due = Date.now() + this.limits.read.timeoutMs
      reading.add(this)
    } catch {
      stream.destroy() // its session went away under it: the client sees the call cut
    }
  }

  /** A trailers-only answer: the status in the response headers, and the stream ends. */
  private fail(code: number, details: string, metadata?: Metadata | null): void {
    // Still watched while its request has not ended: expire() closes the stream of a refused call.
    if (this.answered) return
    this.answered = true
    this.release()
    if (respondStatus(this.stream, code, details, metadata)) answerWritten()
  }

  /** A request message refused by its prefix (prefixRefusal). */
  private refuseMessage(refusal: PrefixRefusal): void {
    this.fail(refusal.code, refusal.details, refusal.tooLarge ? this.limits.tooLarge : undefined)
  }

  private closed(): void {
    reading.delete(this)
    // Answered or failed: released then already.
    if (this.answered || this.cancelled) return
    this.cancelled = true
    this.onCancel?.()
    this.release()
  }

  /**
   * Lets go of what the call no longer needs once answered or cancelled. The stream (and so
   * this call, through its listeners) outlives the call by many scavenges (node:http2 keeps it
   * until its native handle goes), so anything still held here, above all the run the cancel
   * listener closes over, would be promoted to the old generation with it.
   */
  private release(): void {
    this.chunks = []
    this.request = undefined
    this.onCancel = undefined
    this.meta = undefined
  }
}
