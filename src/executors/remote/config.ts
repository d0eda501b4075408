// YAML fields every remote kind (oip, tfserving, seldon) shares, their defaults, and the
// typed settings they parse into once, at config load. docs/executors.md documents each field.
import { readFileSync } from 'node:fs'
import { configPath } from '../../config/paths.ts'
import Type from 'typebox'
import { MAX_TIMER_MS } from '../../config/forms.ts'
import { DATATYPE_NAMES, type TensorSpec } from '../../tensor/index.ts'
import type { CommonModelConfig } from '../common.ts'
import type { ParseContext } from '../types.ts'

export const REMOTE_DEFAULTS = {
  pool_size: 16,
  /** An answer larger than this is UPSTREAM_BAD_RESPONSE, not a reason to run out of memory. */
  max_response_bytes: 64 * 1024 * 1024,
  retries: 1,
  retry_budget: { ratio: 0.2, min_per_second: 10 },
  circuit_breaker: { failures: 5, reset_ms: 5000, first_calls_ms: 250 },
} as const

const TensorDecl = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    datatype: Type.Union(DATATYPE_NAMES.map((d) => Type.Literal(d))),
    shape: Type.Array(Type.Integer({ minimum: -1 })),
    /** The tensor's name on the upstream, when it differs from the name the ensemble uses. */
    upstream: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
)

/** TypeBox properties shared by the remote kinds; each kind adds its own. */
export const remoteFields = {
  url: Type.String({ pattern: '^(https?|grpcs?)://' }),
  protocol: Type.Optional(Type.Union([Type.Literal('rest'), Type.Literal('grpc')])),
  headers: Type.Optional(Type.Record(Type.String(), Type.String())),
  tls: Type.Optional(
    Type.Object(
      { ca: Type.Optional(Type.String()), cert: Type.Optional(Type.String()), key: Type.Optional(Type.String()) },
      { additionalProperties: false },
    ),
  ),
  pool_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
  max_response_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
  timeout_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_TIMER_MS })),
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 5 })),
  retry_budget: Type.Optional(
    Type.Object(
      { ratio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })), min_per_second: Type.Optional(Type.Integer({ minimum: 0 })) },
      { additionalProperties: false },
    ),
  ),
  circuit_breaker: Type.Optional(
    Type.Object(
      {
        failures: Type.Optional(Type.Integer({ minimum: 1 })),
        reset_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_TIMER_MS })),
        first_calls_ms: Type.Optional(Type.Number({ minimum: 5, maximum: MAX_TIMER_MS })),
      },
      { additionalProperties: false },
    ),
  ),
  hedge_after_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_TIMER_MS })),
  inputs: Type.Optional(Type.Array(TensorDecl, { minItems: 1 })),
  outputs: Type.Optional(Type.Array(TensorDecl, { minItems: 1 })),
}

export interface TensorDecl extends TensorSpec {
  readonly upstream?: string
}

export interface RemoteModelConfig extends CommonModelConfig {
  readonly url: string
  readonly protocol?: 'rest' | 'grpc'
  readonly headers?: Readonly<Record<string, string>>
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string }
  readonly pool_size?: number
  readonly max_response_bytes?: number
  readonly timeout_ms?: number
  readonly retries?: number
  readonly retry_budget?: { readonly ratio?: number; readonly min_per_second?: number }
  readonly circuit_breaker?: { readonly failures?: number; readonly reset_ms?: number; readonly first_calls_ms?: number }
  readonly hedge_after_ms?: number
  readonly inputs?: readonly TensorDecl[]
  readonly outputs?: readonly TensorDecl[]
}

export interface TlsFiles {
  readonly ca?: Buffer
  readonly cert?: Buffer
  readonly key?: Buffer
}

/** The settings a remote model runs with: defaults applied, URL split, TLS files read. */
export interface RemoteSettings {
  /** The entry's version, when it names one (sent to the upstream); else the upstream's own. */
  readonly version: string | undefined
  /** TLS files, resolved (a reload re-creates the model when one changes). */
  readonly tlsFiles: readonly string[]
  /** Tensors declared in YAML (else read from the upstream's metadata at load). */
  readonly inputs: readonly TensorDecl[] | undefined
  readonly outputs: readonly TensorDecl[] | undefined
  readonly protocol: 'rest' | 'grpc'
  /** `http(s)://host:port` for REST; for gRPC the scheme only says whether TLS is on. */
  readonly origin: string
  /** `host:port` (gRPC target). */
  readonly authority: string
  /** URL path prefix (e.g. an ingress route), without a trailing slash. */
  readonly basePath: string
  readonly secure: boolean
  readonly tls: TlsFiles | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly poolSize: number
  readonly maxResponseBytes: number
  readonly timeoutMs: number
  readonly retries: number
  readonly retryBudget: { readonly ratio: number; readonly minPerSecond: number }
  readonly breaker: { readonly failures: number; readonly resetMs: number; readonly firstCallsMs: number }
  readonly hedgeAfterMs: number
  /** How long load() waits for the upstream's metadata: not a YAML field (METADATA_TIMEOUT_MS when absent); tests shorten it. */
  readonly metadataTimeoutMs?: number
}

/** The shared fields of a schema-valid entry as settings; unreadable TLS files, bad headers and URL parts that would be dropped are problems. */
export function parseRemote(config: RemoteModelConfig, ctx: ParseContext): RemoteSettings {
  let url: URL
  try {
    url = new URL(config.url)
  } catch {
    // The schema's pattern takes `http://` or a port past 65535: refused here, with where it is.
    ctx.problem('url', `not a valid URL: ${JSON.stringify(config.url.slice(0, 200))}`)
    url = new URL('http://invalid')
  }
  const scheme = url.protocol.slice(0, -1)
  const secure = scheme === 'https' || scheme === 'grpcs' || config.tls !== undefined
  const protocol = config.protocol ?? (scheme.startsWith('grpc') ? 'grpc' : 'rest')
  // Neither undici's origin nor a gRPC target carries these: they would be dropped silently.
  if (url.username || url.password) ctx.problem('url', 'credentials in the URL are not sent: put them in headers (e.g. authorization)')
  if (url.search || url.hash) ctx.problem('url', 'a query or fragment in the URL is not sent: use headers, or the path')
  if (protocol === 'grpc' && url.pathname.replace(/\/+$/, '') !== '') ctx.problem('url', 'gRPC has no path prefix (the service and method are the path): route with headers instead')
  // A plaintext gRPC server on port 80 is rare: a missing port is far likelier a slip (MLServer's is 8081, TF Serving's 8500).
  if (scheme === 'grpc' && url.port === '') ctx.problem('url', 'give the gRPC port: grpc://host:port (grpc:// has no default port; grpcs:// defaults to 443)')
  for (const [name, value] of Object.entries(config.headers ?? {})) checkHeader(ctx, `headers.${name}`, name, value, protocol)
  const port = url.port || (secure ? '443' : '80')
  const tlsFiles: string[] = []
  const read = (key: 'ca' | 'cert' | 'key'): Buffer | undefined => {
    const file = config.tls?.[key]
    if (file === undefined) return undefined
    const path = configPath(ctx.baseDir, file)
    tlsFiles.push(path)
    try {
      return readFileSync(path)
    } catch {
      ctx.problem(`tls.${key}`, `cannot read ${path}`)
      return undefined
    }
  }
  const tls = config.tls ? { ca: read('ca'), cert: read('cert'), key: read('key') } : undefined
  if (config.tls && (config.tls.cert === undefined) !== (config.tls.key === undefined)) ctx.problem('tls', 'cert and key go together (client certificate)')
  return {
    version: config.version === undefined ? undefined : String(config.version),
    tlsFiles,
    inputs: config.inputs,
    outputs: config.outputs,
    protocol,
    origin: `${secure ? 'https' : 'http'}://${url.hostname}:${port}`,
    authority: `${url.hostname}:${port}`,
    basePath: url.pathname.replace(/\/+$/, ''),
    secure,
    tls,
    headers: config.headers ?? {},
    poolSize: config.pool_size ?? REMOTE_DEFAULTS.pool_size,
    maxResponseBytes: config.max_response_bytes ?? REMOTE_DEFAULTS.max_response_bytes,
    timeoutMs: config.timeout_ms ?? Infinity,
    retries: config.retries ?? REMOTE_DEFAULTS.retries,
    retryBudget: {
      ratio: config.retry_budget?.ratio ?? REMOTE_DEFAULTS.retry_budget.ratio,
      minPerSecond: config.retry_budget?.min_per_second ?? REMOTE_DEFAULTS.retry_budget.min_per_second,
    },
    breaker: {
      failures: config.circuit_breaker?.failures ?? REMOTE_DEFAULTS.circuit_breaker.failures,
      resetMs: config.circuit_breaker?.reset_ms ?? REMOTE_DEFAULTS.circuit_breaker.reset_ms,
      firstCallsMs: config.circuit_breaker?.first_calls_ms ?? REMOTE_DEFAULTS.circuit_breaker.first_calls_ms,
    },
    hedgeAfterMs: config.hedge_after_ms ?? 0,
  }
}

/**
 * Headers the transport manages itself: refused by undici (which would fail every call) or
 * forbidden in HTTP/2, so in gRPC metadata.
 */
const TRANSPORT_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'expect', 'te', 'content-length', 'http2-settings'])
const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** gRPC metadata keys (the spec's, and what gRPC servers take); names are lowercased before they are sent. */
const GRPC_KEY = /^[0-9a-z_.-]+$/
/** Printable ASCII: what both undici and gRPC metadata take as a text value (no CR/LF). */
const HEADER_VALUE = /^[\x20-\x7e]*$/

/**
 * A problem at `field` unless `name: value` can go out on every call of this protocol: the
 * transports refuse the rest on each call (undici, node:http2), so they are refused at load.
 */
export function checkHeader(ctx: ParseContext, field: string, name: string, value: string, protocol: 'rest' | 'grpc'): void {
  const key = name.toLowerCase()
  if (!HTTP_TOKEN.test(name) || (protocol === 'grpc' && !GRPC_KEY.test(key))) {
    ctx.problem(field, protocol === 'grpc' ? 'a gRPC metadata key is letters, digits, "-", "_" and "."' : 'not a valid HTTP header name')
  } else if (TRANSPORT_HEADERS.has(key)) ctx.problem(field, `${key} is managed by the transport and cannot be set`)
  else if (protocol === 'grpc' && key.endsWith('-bin')) ctx.problem(field, 'binary (-bin) metadata cannot be configured: values here are text')
  else if (protocol === 'grpc' && key.startsWith('grpc-')) ctx.problem(field, 'grpc- metadata keys are reserved by gRPC')
  if (!HEADER_VALUE.test(value)) ctx.problem(field, 'a header value is printable ASCII (no line breaks, control or non-ASCII characters)')
}

/** The upstream as its URL names it: grpc(s)://host:port, or http(s)://host:port and the path prefix. */
export const upstreamAddress = (s: RemoteSettings): string => (s.protocol === 'grpc' ? `${s.secure ? 'grpcs' : 'grpc'}://${s.authority}` : `${s.origin}${s.basePath}`)
