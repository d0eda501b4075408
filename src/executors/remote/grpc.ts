// gRPC plumbing for the remote kinds: our .proto files loaded once with proto-loader, one
// channel per upstream (shared by every model served there, created when the executor
// is created, i.e. at config load), and a unary call that carries the remaining budget as
// its deadline and is cancelled when the caller's signal fires.
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader'
import { ModelErrorCode } from '../../errors.ts'
import { withTraceMetadata } from '../../telemetry/tracing.ts'
import type { RemoteSettings } from './config.ts'
import { UpstreamError, badResponse, excerpt, unavailable } from './errors.ts'
import { upstreamKey } from './http.ts'
import { SharedByKey } from './shared.ts'

const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url))

/**
 * Field names as in the .proto; 64-bit integers as JS numbers (shapes and INT64 tensors:
 * exact up to 2^53); `json` expands google.protobuf.Any whose type is loaded (TF Serving
 * metadata) and keeps NaN/Infinity readable; oneofs report which member is set.
 */
const OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: true, arrays: true, oneofs: true, json: true, includeDirs: [PROTO_DIR] }

const loaded = new Map<string, PackageDefinition>()

export function loadProtos(files: readonly string[]): PackageDefinition {
  const key = files.join('|')
  let def = loaded.get(key)
  if (!def) {
    def = loadSync([...files], OPTIONS)
    loaded.set(key, def)
  }
  return def
}

export type Method = grpc.MethodDefinition<object, object>

/** The method definitions of one service, by method name. */
export function serviceMethods(def: PackageDefinition, service: string): Record<string, Method> {
  const svc = def[service]
  if (!svc || 'format' in svc) throw new Error(`service ${service} is not in the loaded protos`)
  return svc as unknown as Record<string, Method>
}

const channels = new SharedByKey<grpc.Client>((client) => client.close())

/** A client on the shared channel to this upstream; `release` when the executor closes. */
export function acquireClient(s: RemoteSettings): { client: grpc.Client; release: () => Promise<void> } {
  const key = `${upstreamKey(s, `${s.secure ? 'grpcs' : 'grpc'}://${s.authority}`)} max=${s.maxResponseBytes}`
  const { value, release } = channels.acquire(key, () => {
    const credentials = s.secure
      ? grpc.credentials.createSsl(s.tls?.ca ?? null, s.tls?.key ?? null, s.tls?.cert ?? null)
      : grpc.credentials.createInsecure()
    return new grpc.Client(s.authority, credentials, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': s.maxResponseBytes,
    })
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
        else if (err) reject(grpcError(err, method.path))
        else resolve(response)
      },
    )
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function grpcError(err: grpc.ServiceError, path: string): UpstreamError {
  const status = grpc.status[err.code] ?? String(err.code)
  const details = excerpt(err.details || err.message)
  switch (err.code) {
    case grpc.status.UNAVAILABLE:
      return unavailable(`gRPC UNAVAILABLE from ${path}: ${details}`)
    case grpc.status.DEADLINE_EXCEEDED:
      return new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, `no answer from ${path} within the time allowed`)
    case grpc.status.INTERNAL:
      // grpc-js's own words for an answer it cannot decode (a server's INTERNAL is an error).
      if (details.startsWith('Response message parsing error')) return badResponse(`undecodable answer from ${path}: ${details}`)
      break
    case grpc.status.RESOURCE_EXHAUSTED:
      if (details.startsWith('Received message larger than max')) return badResponse(`answer from ${path} is larger than max_response_bytes: ${details}`)
      break
    default:
      break
  }
  return new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, `gRPC ${status} from ${path}: ${details}`)
}
