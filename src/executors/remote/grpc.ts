// gRPC plumbing for the remote kinds: one channel per upstream (shared by every model served
// there with the same settings, created when the executor is created, i.e. at config
// load), and a unary call that carries the remaining budget as its deadline and is
// cancelled when the caller's signal fires. The protos come from src/proto, with the same
// options as the gateway's own gRPC frontends.
import * as grpc from '@grpc/grpc-js'
import { ModelErrorCode } from '../../errors.ts'
import type { Method } from '../../proto/index.ts'
import { withTraceMetadata } from '../../telemetry/tracing.ts'
import { upstreamAddress, type RemoteSettings } from './config.ts'
import { UpstreamError, badResponse, excerpt, unavailable } from './errors.ts'
import { upstreamKey } from './http.ts'
import { SharedByKey } from './shared.ts'

const channels = new SharedByKey<grpc.Client>((client) => client.close())
/** Each shared client's max_response_bytes: its receive limit, to tell our limit's refusal from the upstream's. */
const receiveLimits = new WeakMap<grpc.Client, number>()

/** A client on the shared channel to this upstream; `release` when the executor closes. */
export function acquireClient(s: RemoteSettings): { client: grpc.Client; release: () => Promise<void> } {
  const key = `${upstreamKey(s, upstreamAddress(s))} max=${s.maxResponseBytes}`
  const { value, release } = channels.acquire(key, () => {
    const credentials = s.secure
      ? grpc.credentials.createSsl(s.tls?.ca ?? null, s.tls?.key ?? null, s.tls?.cert ?? null)
      : grpc.credentials.createInsecure()
    const client = new grpc.Client(s.authority, credentials, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': s.maxResponseBytes,
    })
    receiveLimits.set(client, s.maxResponseBytes)
    return client
  })
  return { client: value, release }
}

export function metadataFrom(headers: Readonly<Record<string, string>>): grpc.Metadata {
  const md = new grpc.Metadata()
  for (const [k, v] of Object.entries(headers)) md.set(k.toLowerCase(), v)
  return md
}

/**
 * One unary call. `timeoutMs` becomes the gRPC deadline the server sees; the call is
 * cancelled when `signal` fires, and the promise then rejects with the signal's reason.
 */
export function unary(client: grpc.Client, method: Method, request: object, metadata: grpc.Metadata, timeoutMs: number, signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.reject(signal.reason as Error)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => call.cancel()
    // Response headers came: the upstream took the request and began its answer (a refusal of
    // the request comes alone, trailers-only). Tells our receive limit's error from its own.
    let answering = false
    const call = client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      withTraceMetadata(metadata), // W3C trace context of this model's span
      { deadline: Date.now() + Math.max(1, Math.floor(timeoutMs)) },
      (err, response) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted) reject(signal.reason as Error)
        else if (err) reject(grpcError(err, method.path, answering ? receiveLimits.get(client) : undefined))
        else resolve(response)
      },
    )
    call.once('metadata', () => (answering = true))
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Statuses that refuse the request's content (TF Serving, MLServer and Triton answer a bad input so). */
const INPUT_REFUSED_STATUS = new Set<number>([grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION, grpc.status.OUT_OF_RANGE])

/** `receiveLimit`: our receive limit, when the upstream had begun to answer (none: it answered nothing but a status). */
function grpcError(err: grpc.ServiceError, path: string, receiveLimit: number | undefined): UpstreamError {
  const status = grpc.status[err.code] ?? String(err.code)
  const details = excerpt(err.details || err.message)
  switch (err.code) {
    case grpc.status.UNAVAILABLE:
      return unavailable(`gRPC UNAVAILABLE from ${path}: ${details}`)
    case grpc.status.DEADLINE_EXCEEDED:
      // Ours (the call's deadline) or the upstream's own: its details say which.
      return new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, `no answer from ${path} within the time allowed (gRPC DEADLINE_EXCEEDED: ${details})`)
    case grpc.status.INTERNAL:
      // grpc-js's own words for an answer it cannot decode (a server's INTERNAL is an error).
      if (details.startsWith('Response message parsing error')) return badResponse(`undecodable answer from ${path}: ${details}`)
      break
    case grpc.status.RESOURCE_EXHAUSTED:
      // The same words for our receive limit (the answer) and the upstream's (our request): ours
      // names max_response_bytes, and comes once the answer began (the limits may be equal).
      if (details.startsWith('Received message larger than max')) {
        if (receiveLimit !== undefined && details.endsWith(` vs ${receiveLimit})`)) return badResponse(`answer from ${path} is larger than max_response_bytes: ${details}`)
        return new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, `${path} refused the request as too large: ${details}`, false, true)
      }
      break
    default:
      break
  }
  return new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, `gRPC ${status} from ${path}: ${details}`, false, INPUT_REFUSED_STATUS.has(err.code))
}
