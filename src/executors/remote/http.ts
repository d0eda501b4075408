// One undici Pool per remote model (keep-alive connections to its upstream), and the JSON
// request every REST adapter makes. Pools are per model, not per origin: a model whose
// upstream hangs holds its own connections to their deadlines, and a neighbour served by
// the same server queued behind them would wait, time out, and count against its own
// circuit. The caller's AbortSignal ends the request at once, sent or waiting for one of
// the pool's connections (slots.ts).
import { createHash } from 'node:crypto'
import { Pool } from 'undici'
import { ModelErrorCode } from '../../errors.ts'
import { errorCodeOf, isConnectionFailure } from '../../network-errors.ts'
import { traceHeaders } from '../../telemetry/tracing.ts'
import type { RemoteSettings } from './config.ts'
import { SharedByKey } from './shared.ts'
import { Slots } from './slots.ts'
import { parseJson, parseLenientJson } from './lenient-json.ts'
import { UpstreamError, badResponse, excerpt, unavailable, upstreamMessage } from './errors.ts'

/** A keep-alive pool to one upstream, and whether it speaks TLS (its connection errors then say so). */
export interface Upstream {
  readonly pool: Pool
  /** At most pool_size calls at the pool; the others wait, each until its deadline (slots.ts). */
  readonly slots: Slots
  readonly tls: boolean
  /** max_response_bytes: an answer that announces more is refused at its headers. */
  readonly maxResponseBytes: number
}

const upstreams = new SharedByKey<Upstream>(({ pool }) => pool.destroy())

/** Upstreams are shared by origin, unless they present different client TLS material. */
export function upstreamKey(s: RemoteSettings, address: string): string {
  if (!s.tls) return address
  const hash = createHash('sha256')
  for (const part of [s.tls.ca, s.tls.cert, s.tls.key]) hash.update(part ?? '').update('\0')
  return `${address}#${hash.digest('hex').slice(0, 16)}`
}

/**
 * Idle connections are closed after this long unless the server says otherwise in a
 * Keep-Alive header: below uvicorn's 5 s (MLServer), so a request is not written to a
 * socket the server is closing at that moment.
 */
export const KEEP_ALIVE_MS = 4_000

/** The model's pool (kept across a reload that leaves its upstream and pool settings alone); `release` when the executor closes. */
export function acquirePool(s: RemoteSettings, model: string): { upstream: Upstream; release: () => Promise<void> } {
  const { value, release } = upstreams.acquire(`${JSON.stringify(model)} ${upstreamKey(s, s.origin)} pool=${s.poolSize} max=${s.maxResponseBytes}`, () => ({
    pool: new Pool(s.origin, {
      connections: s.poolSize,
      keepAliveTimeout: KEEP_ALIVE_MS,
      // No timeouts of undici's own (300 s by default): the call's signal carries its deadline, however long its budget.
      headersTimeout: 0,
      bodyTimeout: 0,
      maxResponseSize: s.maxResponseBytes,
      ...(s.tls ? { connect: { ca: s.tls.ca, cert: s.tls.cert, key: s.tls.key } } : {}),
    }),
    slots: new Slots(s.poolSize),
    tls: s.secure,
    maxResponseBytes: s.maxResponseBytes,
  }))
  return { upstream: value, release }
}

export interface JsonRequest {
  readonly method: 'GET' | 'POST'
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string
  readonly signal: AbortSignal
}

const RETRYABLE_STATUS = new Set([502, 503, 504])
/** Statuses that refuse the request's content (not auth, routing or load: those count against the upstream). */
const INPUT_REFUSED_STATUS = new Set([400, 413, 422])

/** Sends one request and parses the JSON answer; throws UpstreamError (or the signal's reason). */
export async function requestJson({ pool, slots, tls, maxResponseBytes }: Upstream, req: JsonRequest): Promise<unknown> {
  let text: string
  let status: number
  let slot = false
  try {
    const wait = slots.take(req.signal)
    if (wait !== null) await wait
    slot = true
    const res = await pool.request({
      method: req.method,
      path: req.path,
      // W3C trace context of this model's span (empty with tracing off).
      headers: req.body === undefined ? { ...req.headers, ...traceHeaders() } : { 'content-type': 'application/json', ...req.headers, ...traceHeaders() },
      body: req.body,
      signal: req.signal,
    })
    status = res.statusCode
    // undici counts the bytes as they come: an answer announced too large would hold the call to its deadline first.
    const announced = Number(res.headers['content-length'])
    if (announced > maxResponseBytes) {
      res.body.destroy()
      throw badResponse(`answer to ${req.method} ${req.path} announces ${announced} bytes, more than max_response_bytes (${maxResponseBytes})`)
    }
    text = await res.body.text()
  } catch (err) {
    if (req.signal.aborted) throw req.signal.reason
    if (err instanceof UpstreamError) throw err
    throw requestError(err, tls, `${req.method} ${req.path}`)
  } finally {
    if (slot) slots.give()
  }
  if (status >= 300) {
    const message = `HTTP ${status} from ${req.method} ${req.path}: ${upstreamMessage(text) || '(empty body)'}`
    throw new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, message, RETRYABLE_STATUS.has(status), INPUT_REFUSED_STATUS.has(status))
  }
  try {
    return parseJson(text)
  } catch {
    // NaN / Infinity written bare (TensorFlow Serving's REST API does): read as those numbers.
  }
  try {
    return parseLenientJson(text)
  } catch {
    throw badResponse(`not JSON (HTTP ${status}): ${excerpt(text, 80) || '(empty body)'}`)
  }
}

/** Node's codes for a failed TLS handshake or certificate check (OpenSSL's verify results among them). */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|CERT_|INVALID_CA$|HOSTNAME_MISMATCH$)/

/** What an undici failure of `request` (e.g. `POST /v2/…/infer`) means for the model. */
function requestError(err: unknown, tls: boolean, request: string): UpstreamError {
  const e = err as { message?: string }
  const code = errorCodeOf(err)
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return badResponse(`answer to ${request} is larger than max_response_bytes`)
  // A certificate the gateway rejects stays rejected: reported as such, never retried.
  if (TLS_CODE.test(code)) return new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, `TLS handshake failed: ${code} ${e.message ?? ''}`.trim())
  if (tls && code === 'UND_ERR_SOCKET') {
    // Under TLS 1.3 a server that rejects (or wanted) our client certificate closes the socket after the handshake.
    return unavailable(`TLS connection closed by the server: ${e.message ?? code} (a missing or rejected client certificate looks like this)`)
  }
  // Bytes that are not an HTTP/1.1 answer (undici's parser refused them) are a bad answer, not an error status.
  if ((err as { name?: string })?.name === 'HTTPParserError') return badResponse(`answer to ${request} is not HTTP/1.1: ${e.message ?? ''}`)
  if (isConnectionFailure(code)) {
    return unavailable(`connection failed: ${code} ${e.message ?? ''}`.trim())
  }
  return new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, `request failed: ${e.message ?? String(err)}`, false)
}
