// A gRPC unary client on node:http2 alone: one HTTP/2 session per upstream, a stream per
// call. @grpc/grpc-js's client runs every call through its filter stack, Metadata objects and
// call state machine: against a server answering at once (bench/peers/null-grpc.ts), three
// alternating runs on the 2-core bench box measured 290-440 µs of client CPU per call through
// grpc-js and 210-260 µs through this channel, and a p50 70-135 µs longer through grpc-js.
// A remote member pays that on the event loop for every predict.
//
// What it speaks is gRPC over HTTP/2 as its spec says: a POST with `te: trailers` and
// `grpc-timeout`, a length-prefixed message each way, the status in the trailers (or in the
// headers of a trailers-only answer), an HTTP status without one mapped to a gRPC code, and
// RST_STREAM codes mapped as the spec maps them. No compression is offered, so none comes back.
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type SecureClientSessionOptions } from 'node:http2'

/** gRPC status codes, by their numbers in the gRPC spec. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const

const CODE_NAMES: readonly string[] = Object.keys(GrpcCode)

/** A status code's name in the spec, or its number when it has none. */
export const codeName = (code: number): string => CODE_NAMES[code] ?? String(code)

/**
 * A call that ended without an answer: the gRPC status and its details; `local` when this
 * client ended it itself (its deadline, or an answer over its receive limit), not the upstream.
 */
export class GrpcCallError extends Error {
  readonly code: number
  readonly details: string
  readonly local: boolean
  constructor(code: number, details: string, local = false) {
    super(`${codeName(code)}: ${details}`)
    this.code = code
    this.details = details
    this.local = local
  }
}

/** Pings an idle-looking connection this often; no acknowledgement by the next ping closes it (a dead peer). */
const KEEPALIVE_MS = 30_000
/** The spec's limit: at most 8 digits. */
const MAX_TIMEOUT_MS = 99_999_999
const HEADER_BYTES = 5

/** HTTP statuses without a grpc-status, as the gRPC spec maps them. */
function codeOfHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcCode.INTERNAL
    case 401:
      return GrpcCode.UNAUTHENTICATED
    case 403:
      return GrpcCode.PERMISSION_DENIED
    case 404:
      return GrpcCode.UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE
    default:
      return GrpcCode.UNKNOWN
  }
}

/** RST_STREAM error codes, as the gRPC spec maps them. */
function codeOfReset(rst: number): number {
  if (rst === constants.NGHTTP2_REFUSED_STREAM) return GrpcCode.UNAVAILABLE
  if (rst === constants.NGHTTP2_CANCEL) return GrpcCode.CANCELLED
  if (rst === constants.NGHTTP2_ENHANCE_YOUR_CALM) return GrpcCode.RESOURCE_EXHAUSTED
  if (rst === constants.NGHTTP2_INADEQUATE_SECURITY) return GrpcCode.PERMISSION_DENIED
  return GrpcCode.INTERNAL
}

/** grpc-message is percent-encoded; a malformed one is shown as sent. */
function statusMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '')
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

export interface ChannelOptions {
  /** `http://host:port` or `https://host:port`. */
  readonly origin: string
  readonly tls?: Pick<SecureClientSessionOptions, 'ca' | 'cert' | 'key'>
  /** The largest answer message taken; a larger one fails the call (RESOURCE_EXHAUSTED). */
  readonly maxResponseBytes: number
}

/** One upstream's connection: reconnects on the next call after it closes or the server sends GOAWAY. */
export class GrpcChannel {
  private session: ClientHttp2Session | undefined
  private closed = false
  private readonly options: ChannelOptions

  constructor(options: ChannelOptions) {
    this.options = options
  }

  /**
   * One unary call: `message` (serialized) to `path`, its answer's message bytes back. Fails
   * with a GrpcCallError, or with `signal`'s reason once it fires (the stream is cancelled).
   */
  call(path: string, message: Uint8Array, headers: Readonly<Record<string, string>>, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    if (this.closed) return Promise.reject(new GrpcCallError(GrpcCode.UNAVAILABLE, 'channel closed'))
    const ms = Math.min(MAX_TIMEOUT_MS, Math.max(1, Math.floor(timeoutMs)))
    let stream: ClientHttp2Stream
    try {
      stream = this.live().request({ ...headers, ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${ms}m` })
    } catch (err) {
      return Promise.reject(new GrpcCallError(GrpcCode.UNAVAILABLE, (err as Error).message))
    }
    const framed = Buffer.allocUnsafe(HEADER_BYTES + message.byteLength)
    framed[0] = 0
    framed.writeUInt32BE(message.byteLength, 1)
    framed.set(message, HEADER_BYTES)
    stream.end(framed)
    return new UnaryCall(stream, this.options.maxResponseBytes, ms, signal).answer
  }

  /** Ends the connection; calls still out fail, and later calls are refused. */
  close(): void {
    this.closed = true
    this.session?.close()
    this.session = undefined
  }

  private live(): ClientHttp2Session {
    const current = this.session
    if (current !== undefined && !current.closed && !current.destroyed) return current
    const session = connect(this.options.origin, { ...this.options.tls, settings: { enablePush: false } })
    // Its errors reach the calls on it as stream errors; a session that ends is replaced at the next call.
    session.on('error', () => undefined)
    const forget = (): void => {
      if (this.session === session) this.session = undefined
    }
    session.once('close', forget)
    let pinging = false
    const keepalive = setInterval(() => {
      if (session.closed || session.destroyed) return
      if (pinging) return void session.destroy()
      pinging = session.ping((err) => {
        pinging = false
        if (err) session.destroy()
      })
    }, KEEPALIVE_MS).unref()
    session.once('close', () => clearInterval(keepalive))
    this.session = session
    return session
  }
}

/** A call's answer in the making: headers, the one message, the trailers; settled once, when the stream closes or fails. */
class UnaryCall {
  readonly answer: Promise<Buffer>
  private resolve!: (message: Buffer) => void
  private reject!: (err: Error) => void
  private readonly stream: ClientHttp2Stream
  private readonly limit: number
  private readonly signal: AbortSignal
  private settled = false
  private httpStatus = 0
  private grpcStatus: number | undefined
  private grpcMessage = ''
  private readonly chunks: Buffer[] = []
  private received = 0
  private lengthChecked = false
  private error: Error | undefined
  private readonly timer: NodeJS.Timeout
  private readonly onAbort: () => void

  constructor(stream: ClientHttp2Stream, limit: number, timeoutMs: number, signal: AbortSignal) {
    this.stream = stream
    this.limit = limit
    this.signal = signal
    this.answer = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
    this.onAbort = () => this.fail(signal.reason as Error)
    signal.addEventListener('abort', this.onAbort, { once: true })
    this.timer = setTimeout(() => this.fail(new GrpcCallError(GrpcCode.DEADLINE_EXCEEDED, `Deadline exceeded after ${timeoutMs} ms`, true)), timeoutMs)
    stream.on('response', (h) => this.headers(h))
    stream.on('data', (chunk: Buffer) => this.data(chunk))
    stream.on('trailers', (h) => this.status(h))
    stream.on('error', (err) => (this.error ??= err))
    stream.once('close', () => this.closed())
  }

  private headers(h: IncomingHttpHeaders): void {
    this.httpStatus = Number(h[':status'])
    // A trailers-only answer (a refusal, say) has its status in its headers.
    if (h['grpc-status'] !== undefined) this.status(h)
  }

  private status(h: IncomingHttpHeaders): void {
    this.grpcStatus = Number(h['grpc-status'])
    this.grpcMessage = statusMessage(h['grpc-message'])
  }

  private data(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.received += chunk.length
    if (this.lengthChecked || this.received < HEADER_BYTES) return
    // The message's length, known from its first 5 bytes: refused before the rest arrives.
    this.lengthChecked = true
    const length = (this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks)).readUInt32BE(1)
    if (length > this.limit) this.fail(new GrpcCallError(GrpcCode.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs ${this.limit})`, true))
  }

  private closed(): void {
    if (this.settled) return
    if (this.grpcStatus === undefined) return this.fail(this.noStatus())
    if (this.grpcStatus !== GrpcCode.OK) return this.fail(new GrpcCallError(Number.isInteger(this.grpcStatus) ? this.grpcStatus : GrpcCode.UNKNOWN, this.grpcMessage))
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
    if (body.length < HEADER_BYTES) return this.fail(new GrpcCallError(GrpcCode.UNIMPLEMENTED, 'no message in an OK answer'))
    if (body[0] !== 0) return this.fail(new GrpcCallError(GrpcCode.INTERNAL, 'compressed message, but no compression was offered'))
    const length = body.readUInt32BE(1)
    if (body.length !== HEADER_BYTES + length) return this.fail(new GrpcCallError(GrpcCode.UNIMPLEMENTED, body.length < HEADER_BYTES + length ? 'truncated message' : 'more than one message in a unary answer'))
    this.done()
    this.resolve(body.subarray(HEADER_BYTES))
  }

  /** The stream ended without a gRPC status: an HTTP status says why, else the reset, else the connection went away. */
  private noStatus(): GrpcCallError {
    if (this.httpStatus !== 0 && this.httpStatus !== 200) return new GrpcCallError(codeOfHttpStatus(this.httpStatus), `HTTP status ${this.httpStatus} without a gRPC status`)
    const rst = this.stream.rstCode
    const reason = this.error ? `: ${this.error.message}` : ''
    // No reset of this stream's own: the connection failed or closed (refused, dropped, TLS), so the upstream is unavailable.
    if (rst === undefined || rst === constants.NGHTTP2_NO_ERROR || rst === constants.NGHTTP2_INTERNAL_ERROR) return new GrpcCallError(GrpcCode.UNAVAILABLE, `connection closed before the answer's status${reason}`)
    return new GrpcCallError(codeOfReset(rst), `stream reset (HTTP/2 code ${rst}) before the answer's status${reason}`)
  }

  private fail(err: Error): void {
    if (this.settled) return
    this.done()
    if (!this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL)
    this.reject(this.signal.aborted ? (this.signal.reason as Error) : err)
  }

  private done(): void {
    this.settled = true
    clearTimeout(this.timer)
    this.signal.removeEventListener('abort', this.onAbort)
  }
}
