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
import { packageVersion } from '../../version.ts'
import { codeOfHttpStatus, codeOfReset, GrpcCallError, GrpcCode, statusMessage } from './grpc-status.ts'

/**
 * While calls are out, a ping this often (grpc-js's `grpc.keepalive_time_ms` as this gateway
 * set it before); one unanswered this long closes the connection (a dead peer). Idle
 * connections are not pinged: servers count those against the client.
 */
const KEEPALIVE_MS = 30_000
const KEEPALIVE_TIMEOUT_MS = 20_000
/**
 * gRPC-core and grpc-go servers take a ping less than 5 minutes after the previous one as a
 * strike unless they sent headers, data or trailers in between (the first ping after those
 * is free), and close the connection with ENHANCE_YOUR_CALM past 2 strikes: a call silent for
 * minutes, pinged every 30 s, would lose its connection. So after MAX_PINGS_WITHOUT_DATA pings
 * with nothing received from the upstream since, pings go out at most every QUIET_PING_MS:
 * at most 2 strikes (the second of those pings, and the first too when the ping before them
 * crossed the upstream's last answer and took the free one), and quiet pings are never
 * strikes. QUIET_PING_MS exceeds 5 minutes by more than the ack timeout (a ping delayed
 * longer closes the connection first) and by far more than a timer's few ms of earliness.
 * A dead peer under silent calls is then found within QUIET_PING_MS + KEEPALIVE_TIMEOUT_MS.
 */
const MAX_PINGS_WITHOUT_DATA = 2
const QUIET_PING_MS = 330_000
/**
 * A connection whose upstream has not sent its HTTP/2 SETTINGS by then is given up (its calls
 * fail UNAVAILABLE, the next call tries again). Counted to the SETTINGS, not to the TCP or TLS
 * connect: a process that is stopped or hung still has its connections accepted by the kernel.
 */
const CONNECT_TIMEOUT_MS = 20_000
/** Client stream ids are odd and below 2^31: a connection is replaced before it runs out of them. */
const STREAMS_PER_CONNECTION = 2 ** 30 - 1
/** The spec's limit: at most 8 digits. */
const MAX_TIMEOUT_MS = 99_999_999
const HEADER_BYTES = 5
const USER_AGENT = `specserve/${packageVersion}`
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

export interface ChannelOptions {
  /** `http://host:port` or `https://host:port`. */
  readonly origin: string
  readonly tls?: Pick<SecureClientSessionOptions, 'ca' | 'cert' | 'key'>
  /** The largest answer message taken; a larger one fails the call (RESOURCE_EXHAUSTED). */
  readonly maxResponseBytes: number
  /** Calls on one connection before the next call opens another (tests set it low). */
  readonly streamsPerConnection?: number
  /** Keepalive interval, ping acknowledgement timeout and the interval once the upstream is quiet, ms (tests set them low). */
  readonly keepalive?: Keepalive
  /** How long a connection may take to open, ms (tests set it low). */
  readonly connectTimeoutMs?: number
}

interface Keepalive {
  readonly everyMs: number
  readonly timeoutMs: number
  /** Between pings once MAX_PINGS_WITHOUT_DATA went out with nothing from the upstream since. */
  readonly quietMs?: number
}

/** A connection and what the channel counts on it. */
interface Connection {
  readonly session: ClientHttp2Session
  /** Calls started on it. */
  streams: number
  /** Calls on it not closed yet. */
  active: number
  /** No new calls go to it; it closes when `active` comes to 0. */
  retired: boolean
  /** Keepalive pings sent since headers, data or trailers last came from the upstream (MAX_PINGS_WITHOUT_DATA). */
  pingsWithoutData: number
  /** Keepalive ticks since the last ping (QUIET_PING_MS). */
  ticksSincePing: number
  /** The upstream's SETTINGS came: the connection is open (pinged from then on). */
  open: boolean
}

/** One upstream's connection: replaced at the next call once it closes, is closing (GOAWAY) or has run its streams. */
export class GrpcChannel {
  private conn: Connection | undefined
  private closed = false
  private readonly options: ChannelOptions
  private readonly streamsPerConnection: number
  private readonly keepalive: Keepalive

  constructor(options: ChannelOptions) {
    this.options = options
    this.streamsPerConnection = options.streamsPerConnection ?? STREAMS_PER_CONNECTION
    this.keepalive = options.keepalive ?? { everyMs: KEEPALIVE_MS, timeoutMs: KEEPALIVE_TIMEOUT_MS }
  }

  /**
   * One unary call: `message` (serialized) to `path`, its answer's message bytes back, with
   * `headers` (lower-case metadata) and then `trace` (the call's trace context). Fails with a
   * GrpcCallError, or with `signal`'s reason once it fires (the stream is cancelled).
   */
  call(path: string, message: Uint8Array, headers: Readonly<Record<string, string>>, timeoutMs: number, signal: AbortSignal, trace = NO_HEADERS): Promise<Buffer> {
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    if (this.closed) return Promise.reject(new GrpcCallError(GrpcCode.UNAVAILABLE, 'channel closed'))
    const ms = Math.min(MAX_TIMEOUT_MS, Math.max(1, Math.floor(timeoutMs)))
    const conn = this.live()
    let stream: ClientHttp2Stream
    try {
      stream = conn.session.request({ 'user-agent': USER_AGENT, ...headers, ...trace, ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${ms}m` })
    } catch (err) {
      return Promise.reject(new GrpcCallError(GrpcCode.UNAVAILABLE, (err as Error).message))
    }
    conn.streams++
    const framed = Buffer.allocUnsafe(HEADER_BYTES + message.byteLength)
    framed[0] = 0
    framed.writeUInt32BE(message.byteLength, 1)
    framed.set(message, HEADER_BYTES)
    stream.end(framed)
    return new UnaryCall(conn, stream, this.options.maxResponseBytes, ms, signal).answer
  }

  /** Refuses later calls and closes the connection once the calls still out on it end. */
  close(): void {
    this.closed = true
    if (this.conn) retire(this.conn)
    this.conn = undefined
  }

  private live(): Connection {
    const current = this.conn
    if (current !== undefined && !current.session.closed && !current.session.destroyed && current.streams < this.streamsPerConnection) return current
    if (current) retire(current) // out of streams: its calls finish on it
    const session = connect(this.options.origin, { ...this.options.tls, settings: { enablePush: false } })
    const conn: Connection = { session, streams: 0, active: 0, retired: false, pingsWithoutData: 0, ticksSincePing: 0, open: false }
    // Its errors reach the calls on it as stream errors; a session that ends is replaced at the next call.
    session.on('error', () => undefined)
    // Not a reason to keep the process alive: calls out keep it alive by their deadline timers.
    session.unref()
    const connectMs = this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS
    const settingsTimer = setTimeout(() => session.destroy(new Error(`no HTTP/2 connection within ${connectMs} ms`)), connectMs).unref()
    session.once('remoteSettings', () => {
      conn.open = true
      clearTimeout(settingsTimer)
    })
    const { everyMs, timeoutMs, quietMs = QUIET_PING_MS } = this.keepalive
    // A tick is not early by more than a few ms, so this many ticks after a ping are quietMs after it, or nearly.
    const quietTicks = Math.ceil(quietMs / Math.max(1, everyMs))
    const pinger = setInterval(() => ping(conn, timeoutMs, quietTicks), everyMs).unref()
    session.once('close', () => {
      clearTimeout(settingsTimer)
      clearInterval(pinger)
      if (this.conn === conn) this.conn = undefined
    })
    this.conn = conn
    return conn
  }
}

/**
 * Closes a connection once the calls on it end: now if none is out, else when the last one
 * closes. Closing a session sooner sends its GOAWAY ahead of calls not yet written to it (one
 * still connecting), and node then refuses those calls as if the upstream had.
 */
function retire(conn: Connection): void {
  conn.retired = true
  if (conn.active === 0 && !conn.session.closed && !conn.session.destroyed) conn.session.close()
}

/**
 * A keepalive ping while calls are out on an open connection (as grpc-js pinged with
 * `grpc.keepalive_time_ms`; one still opening is the connect timeout's), every `quietTicks`
 * ticks once MAX_PINGS_WITHOUT_DATA went out with nothing from the upstream since: no
 * acknowledgement in time ends the connection, and the calls on it fail UNAVAILABLE.
 */
function ping(conn: Connection, timeoutMs: number, quietTicks: number): void {
  const { session } = conn
  if (conn.active === 0 || !conn.open || session.closed || session.destroyed) return
  if (++conn.ticksSincePing < quietTicks && conn.pingsWithoutData >= MAX_PINGS_WITHOUT_DATA) return
  conn.ticksSincePing = 0
  conn.pingsWithoutData++
  const unanswered = setTimeout(() => session.destroy(new Error(`keepalive ping unanswered for ${timeoutMs} ms`)), timeoutMs).unref()
  // Answered, or cancelled (the session closing): either way not a dead peer.
  session.ping(() => clearTimeout(unanswered))
}

/** A call's answer in the making: headers, the one message, the trailers; settled once, when the stream closes or fails. */
class UnaryCall {
  readonly answer: Promise<Buffer>
  private resolve!: (message: Buffer) => void
  private reject!: (err: Error) => void
  private readonly conn: Connection
  private readonly stream: ClientHttp2Stream
  private readonly limit: number
  private readonly signal: AbortSignal
  private settled = false
  private httpStatus = 0
  private grpcStatus: number | undefined
  private grpcMessage = ''
  private readonly chunks: Buffer[] = []
  private received = 0
  /** The answer message's length once its prefix came, else -1. */
  private length = -1
  private error: Error | undefined
  private readonly timer: NodeJS.Timeout
  private readonly onAbort: () => void

  constructor(conn: Connection, stream: ClientHttp2Stream, limit: number, timeoutMs: number, signal: AbortSignal) {
    this.conn = conn
    this.stream = stream
    this.limit = limit
    this.signal = signal
    conn.active++
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
    this.conn.pingsWithoutData = 0
    this.httpStatus = Number(h[':status'])
    // A trailers-only answer (a refusal, say) has its status in its headers.
    if (h['grpc-status'] !== undefined) return this.status(h)
    const type = h['content-type'] ?? ''
    if (this.httpStatus === 200 && !type.startsWith('application/grpc')) this.fail(new GrpcCallError(GrpcCode.UNKNOWN, `not a gRPC answer (content-type ${JSON.stringify(type)})`))
  }

  private status(h: IncomingHttpHeaders): void {
    this.conn.pingsWithoutData = 0
    this.grpcStatus = Number(h['grpc-status'])
    this.grpcMessage = statusMessage(h['grpc-message'])
  }

  private data(chunk: Buffer): void {
    this.conn.pingsWithoutData = 0
    if (this.settled) return
    this.chunks.push(chunk)
    this.received += chunk.length
    if (this.length < 0) {
      if (this.received < HEADER_BYTES) return
      // The message's length, known from its first 5 bytes: refused before the rest arrives.
      this.length = (this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks)).readUInt32BE(1)
      if (this.length > this.limit) return this.fail(new GrpcCallError(GrpcCode.RESOURCE_EXHAUSTED, `Received message larger than max (${this.length} vs ${this.limit})`, true))
    }
    if (this.received > HEADER_BYTES + this.length) this.fail(new GrpcCallError(GrpcCode.UNIMPLEMENTED, 'more than one message in a unary answer'))
  }

  private closed(): void {
    if (--this.conn.active === 0 && this.conn.retired && !this.conn.session.closed) this.conn.session.close()
    if (this.settled) return
    if (this.grpcStatus === undefined) return this.fail(this.noStatus())
    if (this.grpcStatus !== GrpcCode.OK) return this.fail(new GrpcCallError(Number.isInteger(this.grpcStatus) ? this.grpcStatus : GrpcCode.UNKNOWN, this.grpcMessage))
    if (this.received < HEADER_BYTES) return this.fail(new GrpcCallError(GrpcCode.UNIMPLEMENTED, 'no message in an OK answer'))
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
    if (body[0] !== 0) return this.fail(new GrpcCallError(GrpcCode.INTERNAL, 'compressed message, but no compression was offered'))
    if (body.length < HEADER_BYTES + this.length) return this.fail(new GrpcCallError(GrpcCode.INTERNAL, 'truncated message'))
    this.done()
    this.resolve(body.subarray(HEADER_BYTES))
  }

  /**
   * The stream ended without a gRPC status: an HTTP status says why; else the connection
   * failed or closed under it (node then resets its streams with CANCEL, or with a GOAWAY's
   * error code) or node refused the stream itself (a closing session, stream ids run out):
   * unavailable; else the upstream reset the stream, or ended it without a status.
   */
  private noStatus(): GrpcCallError {
    if (this.httpStatus !== 0 && this.httpStatus !== 200) return new GrpcCallError(codeOfHttpStatus(this.httpStatus), `HTTP status ${this.httpStatus} without a gRPC status`)
    const reason = this.error ? `: ${this.error.message}` : ''
    const local = this.error !== undefined && (this.error as NodeJS.ErrnoException).code !== 'ERR_HTTP2_STREAM_ERROR'
    // A connection that closes resets its streams with CANCEL before node destroys the session: closed says so by then.
    const gone = this.conn.session.destroyed || (this.conn.session.closed && (this.stream.rstCode === constants.NGHTTP2_CANCEL || !this.stream.rstCode))
    if (gone || local) return new GrpcCallError(GrpcCode.UNAVAILABLE, `connection closed before the answer's status${reason}`)
    const rst = this.stream.rstCode ?? constants.NGHTTP2_NO_ERROR
    if (rst === constants.NGHTTP2_NO_ERROR) return new GrpcCallError(GrpcCode.INTERNAL, 'stream ended without a gRPC status')
    return new GrpcCallError(codeOfReset(rst), `stream reset by the upstream (HTTP/2 error code ${rst})`)
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
