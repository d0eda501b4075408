// buildServer(config) returns a fastify app; listen() is the caller's. Models load in the
// background (`app.gateway.load()`): /healthz answers at once, /readyz only once warm.
import { createServer, ServerResponse, STATUS_CODES, type IncomingMessage, type RequestListener, type Server } from 'node:http'
import { createServer as createSecureServer } from 'node:https'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import { KEEP_ALIVE_BUFFER_MS, MAX_NAME_IN_PATH } from '../../config/forms.ts'
import type { GatewayConfig } from '../../config/load.ts'
import { Gateway } from '../../gateway.ts'
import { ErrorCatalogue, type ErrorCode } from '../../errors.ts'
import { quote } from '../../tensor/index.ts'
import { mapError } from '../errors.ts'
import { loggableRequestId } from '../native/request.ts'
import { admitting } from './admission.ts'
import { registerJsonParser } from './bodies.ts'
import { registerMethodTable, registerNotFound } from './methods.ts'
import { registerInfoRoutes } from './info.ts'
import { registerOpenApi } from './openapi.ts'
import { registerOipRoutes } from './oip.ts'
import { registerPredictRoutes } from './predict.ts'
import { registerAdminRoutes } from '../../reload/admin.ts'
import type { Registry } from '../../registry/registry.ts'
import { registerRegistryRoutes } from '../../registry/routes.ts'
import { registerGuard } from '../../security/rest.ts'
import { TlsFiles, TlsFilesError } from '../../security/tls.ts'
import { requestLine } from './request-line.ts'
import type { Telemetry } from '../../telemetry/index.ts'
import { registerMetricsRoute, traceRequests } from '../../telemetry/routes.ts'
import { ListenerDrops } from '../../listener-drops.ts'

declare module 'fastify' {
  interface FastifyInstance {
    gateway: Gateway
    /** The certificate files (server.tls), null when plaintext: 'reloaded' and 'rejected' say what became of a change. */
    tls: TlsFiles | null
  }
}

export interface BuildOptions {
  /** Serve an existing gateway (shared with gRPC); otherwise one is made and closed with the app. */
  readonly gateway?: Gateway
  /** The app's logger (app.log); fastify's per-request logging only with LOG_REQUESTS=1. */
  readonly logger?: FastifyBaseLogger
  /** GET /metrics and request spans (see src/telemetry). */
  readonly telemetry?: Telemetry
  /** Models as data: the versions routes (GET, PUT, rollback) of the repository's models. */
  readonly registry?: Registry | undefined
}

export function buildServer(config: GatewayConfig, options: BuildOptions = {}): FastifyInstance {
  const logRequests = process.env.LOG_REQUESTS === '1'
  const owned = !options.gateway
  const gateway = options.gateway ?? new Gateway(config)
  if (options.logger) ListenerDrops.of(gateway).logTo(options.logger)
  // server.tls: HTTPS, the files followed as they change (src/security/tls.ts).
  const tls = config.server.tls ? new TlsFiles(config.server.tls, config.server.headers_timeout_ms) : null
  let serving: RequestListener | undefined
  const app = Fastify({
    // Predicts are admitted (or refused) before fastify routes them: see admission.ts.
    serverFactory: (handler) => listener((serving = admitting(gateway, handler)), tls, config.server, gateway),
    // Only read for the addresses fastify logs (https://…): the server itself comes from serverFactory.
    ...(tls && { https: {} }),
    // A fastify that has a logger attaches response listeners to every request, even with
    // request logging off: measured ~6 µs of main-thread CPU per single-model predict. So it
    // gets ours only when requests are logged. Otherwise ours is app.log (below), and each
    // request's log is ours too (no child per request), so what fastify itself warns about
    // a request (a reply sent twice, an error after the reply) still reaches it.
    ...(logRequests && options.logger
      ? { loggerInstance: options.logger.child({}, { serializers: { req: requestLine } }) }
      : options.logger && { childLoggerFactory: childOf(options.logger), logController: new LogController({ disableRequestLogging: true }) }),
    bodyLimit: config.server.body_limit_bytes,
    // The config refuses longer names (config/forms.ts): every model and ensemble stays routable.
    routerOptions: { maxParamLength: MAX_NAME_IN_PATH },
    // request.id, which every request log line and the `unexpected error` line carry: x-request-id
    // only when the predict would take it as its id (logs never hold an id a predict refuses).
    genReqId: requestIds(),
    // Once close() begins, closing() below answers in our shape instead of fastify's 503.
    return503OnClosing: false,
    clientErrorHandler: clientErrors(config.server),
    // Errors fastify meets before a route (a URL that is not valid percent-encoding, a path
    // parameter over maxParamLength): in our catalogue, in the shape of the API asked.
    frameworkErrors: (err, request, reply) => {
      const mapped = mapError(err)
      const message = mapped.code === 'INTERNAL' ? mapped.message : `${frameworkMessage(err.code)}: ${quote(request.url, 200)}`
      void (reply as FastifyReply).status(mapped.http).send(isOipUrl(request.url) ? { error: message, code: mapped.code } : { code: mapped.code, message })
    },
  })
  // fastify sets app.log once, when it is made; plugin contexts inherit it.
  if (!logRequests && options.logger) app.log = options.logger
  app.decorate('gateway', gateway)
  app.decorate('tls', tls)
  // Credentials, scopes and rate limits (only with an `auth` section); before any route is added.
  const guarded = registerGuard(app, gateway)
  // Bodies are read by our JSON parser, not fastify's (bodies.ts).
  registerJsonParser(app)
  // Which methods each path is served with, for 405s: read from the routes as they are added.
  registerMethodTable(app)
  if (owned) app.addHook('onClose', async () => gateway.close())
  // A request on a connection still open once close() began (a kept-alive one mid-request, a
  // pipelined one) gets 503 NOT_READY. The request listener is swapped, not checked per request.
  app.addHook('preClose', (done) => {
    if (serving) app.server.off('request', serving).on('request', closing)
    done()
  })
  if (tls) {
    tls.on('reloaded', () => app.log.info({ cert: tls.config.cert }, 'TLS files changed: new connections get them'))
    // Files that do not make a pair are an operator's mistake, said in a line; anything else (a watch that failed) keeps its stack.
    tls.on('rejected', (err) => {
      if (err instanceof TlsFilesError) app.log.error({ error: err.message, cert: tls.config.cert }, 'TLS files changed but do not make a valid pair: the previous ones keep serving')
      else app.log.error({ err, cert: tls.config.cert }, 'TLS files: cannot watch or read them: the current ones keep serving')
    })
    app.addHook('onClose', async () => tls.close())
  }

  app.setErrorHandler((err, request, reply) => {
    const mapped = mapError(err)
    if (mapped.code === 'INTERNAL') request.server.log.error({ err, reqId: request.id }, 'unexpected error')
    void reply.status(mapped.http).send({ code: mapped.code, message: mapped.message, ...mapped.details })
  })
  if (options.telemetry) traceRequests(app, options.telemetry)
  // 404, or 405 with Allow for a path served with other methods (methods.ts); /v2 has its own, in its shape.
  // After the tracing plugin: its context takes the request-span hooks there are when it is made.
  registerNotFound(app, 'native')
  registerOpenApi(app, guarded)
  // Routes are added once @fastify/swagger is loaded, so GET /openapi.json sees them all.
  app.after(() => {
    if (options.telemetry) registerMetricsRoute(app, options.telemetry)
    registerAdminRoutes(app, gateway, guarded)
    registerInfoRoutes(app, gateway)
    if (options.registry) registerRegistryRoutes(app, options.registry, guarded)
    registerPredictRoutes(app, gateway)
    registerOipRoutes(app, gateway)
  })
  return app
}

/** The Open Inference Protocol's routes (`/v2`, `/v2/…`), which answer errors as `{"error", "code"}`. */
const isOipUrl = (url: string): boolean => url.startsWith('/v2') && (url.length === 3 || url[3] === '/' || url[3] === '?')

/** Fastify's own messages echo the whole URL: ours say what is wrong and quote it short. */
function frameworkMessage(code: string): string {
  if (code === 'FST_ERR_BAD_URL') return 'the URL is not valid percent-encoded UTF-8'
  if (code === 'FST_ERR_MAX_PARAM_LENGTH') return 'a path segment of the URL is too long'
  return 'bad request'
}

/** A pre-serialized answer written by the listener itself, in the native `{code, message}` or the V2 `{error, code}` shape. */
interface RawAnswer {
  readonly status: number
  readonly body: string
  readonly headers: Readonly<Record<string, string | number>>
}

function rawAnswer(code: ErrorCode, message: string, shape: 'native' | 'oip' = 'native'): RawAnswer {
  const body = JSON.stringify(shape === 'native' ? { code, message } : { error: message, code })
  return { status: ErrorCatalogue[code].http, body, headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' } }
}

const CLOSING_MESSAGE = 'the gateway is shutting down: retry on a new connection'
const closingNative = rawAnswer('NOT_READY', CLOSING_MESSAGE)
const closingOip = rawAnswer('NOT_READY', CLOSING_MESSAGE, 'oip')

/** The request listener once close() began: every request is refused NOT_READY (responseClass adds retry-after). */
function closing(req: Parameters<RequestListener>[0], res: Parameters<RequestListener>[1]): void {
  const { status, body, headers } = isOipUrl(req.url ?? '') ? closingOip : closingNative
  res.writeHead(status, headers)
  res.end(body)
}

/** Node's limit on a request line and headers (maxHeaderSize below): over it, HEADERS_TOO_LARGE. */
const MAX_HEADER_BYTES = 16 * 1024

/** A response already under way on the socket: an error answer written now would corrupt it (Node's own check). */
const answering = (socket: Socket): boolean => (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true

/**
 * What Node's HTTP parser refuses before fastify sees a request (headers over 16 KiB, a request
 * not in within the timeouts, bytes that are not HTTP/1.1), in our catalogue instead of
 * fastify's default `{error, message, statusCode}`. The URL is not known (or not parsed), so
 * always the native shape. As fastify and Node do: nothing for a reset or destroyed socket,
 * written only if the socket is writable, then destroyed.
 */
function clientErrors(limits: GatewayConfig['server']): (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket) => void {
  const headersTooLarge = onTheWire(rawAnswer('HEADERS_TOO_LARGE', `the request line and headers are over ${MAX_HEADER_BYTES / 1024} KiB`))
  const timeout = onTheWire(rawAnswer(
    'REQUEST_TIMEOUT',
    `the request did not arrive in time: its headers within ${limits.headers_timeout_ms} ms (server.headers_timeout_ms), all of it within ${limits.request_timeout_ms} ms (server.request_timeout_ms)`,
  ))
  // fastify calls it bound to the app: `this.log` is the app's logger.
  return function (err, socket) {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const answer =
      err.code === 'HPE_HEADER_OVERFLOW' ? headersTooLarge
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? timeout
      : onTheWire(rawAnswer('BAD_REQUEST', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`))
    this.log.trace({ err }, 'client error')
    if (socket.writable && !answering(socket)) socket.write(answer)
    socket.destroy(err)
  }
}

/** The answer as bytes on the wire: the socket has no response object to write it. */
function onTheWire({ status, body, headers }: RawAnswer): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`)
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines.join('')}\r\n${body}`
}

/** x-request-id when loggableRequestId accepts it, else fastify's own counter (`req-<base 36>`, wrapping at 2^31 as fastify's does). */
function requestIds(): (req: IncomingMessage) => string {
  let next = 0
  return (req) => loggableRequestId(req.headers['x-request-id']) ?? `req-${(next = (next + 1) & 0x7fffffff).toString(36)}`
}

/** Every request logs through `logger` itself: one logger, no child per request. */
const childOf = (logger: FastifyBaseLogger): NonNullable<FastifyServerOptions['childLoggerFactory']> => () => logger

/**
 * The HTTP server: plaintext, or HTTPS whose certificate follows the files (new handshakes
 * only: open connections stay). Its limits are what a slow or idle client can hold: headers
 * within headers_timeout_ms (an idle new connection counts as waiting for them), the whole
 * request within request_timeout_ms (408, then closed), an idle kept-alive connection
 * closed after keep_alive_timeout_ms, and no more than max_connections at once. Node checks
 * the first two on an interval, here a tenth of the headers timeout (at most 1 s). Over TLS
 * the handshake must be done within headers_timeout_ms too (Node's default is 120 s; set in
 * TlsFiles.serverOptions, for both listeners): the HTTP timeouts only start once it is, so
 * an idle connection that never sends a ClientHello would hold its socket for two minutes.
 */
function listener(handler: RequestListener, tls: TlsFiles | null, limits: GatewayConfig['server'], gateway: Gateway): Server {
  const options = {
    ServerResponse: responseClass(gateway),
    headersTimeout: limits.headers_timeout_ms,
    requestTimeout: limits.request_timeout_ms,
    keepAliveTimeout: limits.keep_alive_timeout_ms,
    // Set, not left to Node's default: the key's cap (MAX_KEEP_ALIVE_MS) is counted from it.
    keepAliveTimeoutBuffer: KEEP_ALIVE_BUFFER_MS,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, limits.headers_timeout_ms / 10)),
    maxHeaderSize: MAX_HEADER_BYTES,
  }
  const server = tls ? createSecureServer({ ...tls.serverOptions, ...options }, handler) : createServer(options, handler)
  server.maxConnections = limits.max_connections
  ListenerDrops.of(gateway).watch(server, 'rest', limits.max_connections)
  if (tls) tls.subscribe((context) => (server as ReturnType<typeof createSecureServer>).setSecureContext(context))
  closesQuietConnections(server, tls !== null)
  return server
}

/**
 * What Node's close leaves open, cut: Node counts a connection that has sent nothing yet as
 * waiting for its headers, not idle, so close() (the stop) does not close it, and a TLS
 * connection whose handshake is not done has not reached HTTP at all, so neither
 * closeIdleConnections() nor closeAllConnections() sees it: either one held the stop for the
 * whole grace period, the TLS one for up to the handshake timeout. So the listener's sockets
 * are tracked (TCP; over TLS, the TLS socket too once its handshake is done):
 * closeIdleConnections(), which close() calls as the stop begins, also destroys each that has
 * read nothing (no byte; over TLS, no ClientHello, or no request after the handshake), and
 * closeAllConnections(), the cut at the end of the grace period, destroys every one.
 */
function closesQuietConnections(server: Server, tls: boolean): void {
  const sockets = new Set<Socket>()
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  }
  server.on('connection', track)
  if (tls) server.on('secureConnection', track)
  const closeIdle = server.closeIdleConnections.bind(server)
  const closeAll = server.closeAllConnections.bind(server)
  server.closeIdleConnections = () => {
    closeIdle()
    for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy()
  }
  server.closeAllConnections = () => {
    closeAll()
    for (const socket of sockets) socket.destroy()
  }
}

/**
 * Every response, whoever writes it (a route, the admission's refusals, the listener's 503
 * while closing): a 503 (OVERLOADED, NOT_READY) says when to retry, and a draining gateway
 * closes each kept-alive connection once it has its answer, so shutdown does not wait out
 * the grace period for clients that keep their sockets open. One check in writeHead covers
 * every writer; a fastify onSend hook would run a hook chain on every reply and still miss
 * the refusals written before fastify.
 */
function responseClass(gateway: Gateway): typeof ServerResponse {
  class GatewayResponse extends ServerResponse {
    override writeHead(statusCode: number, reasonOrHeaders?: unknown, headers?: unknown): this {
      if (statusCode === 503 && !this.hasHeader('retry-after')) this.setHeader('retry-after', '1')
      if (!gateway.ready) this.setHeader('connection', 'close')
      return (super.writeHead as (status: number, a?: unknown, b?: unknown) => this).call(this, statusCode, reasonOrHeaders, headers)
    }
  }
  return GatewayResponse as typeof ServerResponse
}
