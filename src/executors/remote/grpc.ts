// gRPC plumbing for the remote kinds: one channel per upstream (shared by every model served
// there with the same settings, created when the executor is created, i.e. at config
// load), and a unary call that carries the remaining budget as its deadline and is
// cancelled when the caller's signal fires. The protos come from src/proto, with the same
// options as the gateway's own gRPC frontends.
import { ModelErrorCode } from '../../errors.ts'
import type { Method } from '../../proto/index.ts'
import { traceHeaders } from '../../telemetry/tracing.ts'
import { upstreamAddress, type RemoteSettings } from './config.ts'
import { UpstreamError, badResponse, excerpt, unavailable } from './errors.ts'
import { GrpcChannel } from './grpc-channel.ts'
import { codeName, GrpcCallError, GrpcCode } from './grpc-status.ts'
import { upstreamKey } from './http.ts'
import { SharedByKey } from './shared.ts'

const channels = new SharedByKey<GrpcChannel>((channel) => channel.close())

/** The shared channel to this upstream; `release` when the executor closes. */
export function acquireClient(s: RemoteSettings): { client: GrpcChannel; release: () => Promise<void> } {
  const key = `${upstreamKey(s, upstreamAddress(s))} max=${s.maxResponseBytes}`
  const { value, release } = channels.acquire(key, () => {
    return new GrpcChannel({ origin: `${s.secure ? 'https' : 'http'}://${s.authority}`, maxResponseBytes: s.maxResponseBytes, ...(s.tls ? { tls: s.tls } : {}) })
  })
  return { client: value, release }
}

/** A model's configured gRPC metadata as HTTP/2 header fields (names in lower case), built once per executor. */
export function metadataFrom(headers: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const fields: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers)) fields[k.toLowerCase()] = v
  return fields
}

/**
 * One unary call. `timeoutMs` becomes the gRPC deadline the server sees, and the call's own;
 * the call is cancelled when `signal` fires, and the promise then rejects with the signal's reason.
 */
export async function unary(client: GrpcChannel, method: Method, request: object, metadata: Readonly<Record<string, string>>, timeoutMs: number, signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) throw signal.reason as Error
  let message: Buffer
  try {
    message = await client.call(method.path, method.requestSerialize(request), metadata, timeoutMs, signal, traceHeaders()) // W3C trace context of this model's span
  } catch (err) {
    throw err instanceof GrpcCallError ? grpcError(err, method.path) : err
  }
  try {
    return method.responseDeserialize(message)
  } catch (err) {
    throw badResponse(`undecodable answer from ${method.path}: Response message parsing error: ${(err as Error).message}`)
  }
}

/** Statuses that refuse the request's content (TF Serving, MLServer and Triton answer a bad input so). */
const INPUT_REFUSED_STATUS = new Set<number>([GrpcCode.INVALID_ARGUMENT, GrpcCode.FAILED_PRECONDITION, GrpcCode.OUT_OF_RANGE])

function grpcError(err: GrpcCallError, path: string): UpstreamError {
  const details = excerpt(err.details || err.message)
  switch (err.code) {
    case GrpcCode.UNAVAILABLE:
      return unavailable(`gRPC UNAVAILABLE from ${path}: ${details}`)
    case GrpcCode.DEADLINE_EXCEEDED:
      // Ours (the call's deadline) or the upstream's own: its details say which.
      return new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, `no answer from ${path} within the time allowed (gRPC DEADLINE_EXCEEDED: ${details})`)
    case GrpcCode.RESOURCE_EXHAUSTED:
      // Our receive limit (the answer), or the upstream's (our request) in the same words.
      if (err.local) return badResponse(`answer from ${path} is larger than max_response_bytes: ${details}`)
      if (details.startsWith('Received message larger than max')) return new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, `${path} refused the request as too large: ${details}`, false, true)
      break
    default:
      break
  }
  return new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, `gRPC ${codeName(err.code)} from ${path}: ${details}`, false, INPUT_REFUSED_STATUS.has(err.code))
}
