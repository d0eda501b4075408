// The one catalogue of request errors. Every frontend maps a GatewayError through this
// table, so a code means the same thing over REST, OIP V2 and gRPC. docs/errors.md lists
// the same rows; test/errors.test.ts keeps the two in step.
import type { Failure } from './tensor/index.ts'

/** gRPC status codes we use (numeric values from the gRPC spec). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  ALREADY_EXISTS: 6,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const

export const ErrorCatalogue = {
  BAD_REQUEST: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, summary: 'The request is malformed (not JSON, wrong structure).' },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, summary: 'The request body is over the configured limit.' },
  UNSUPPORTED_ENCODING: { http: 415, grpc: GrpcStatus.INVALID_ARGUMENT, summary: 'REST only: the body was sent with a content-encoding other than identity (gzip, ...).' },
  // The next two are the REST listener's own (answered before any route); gRPC's read limit answers the second too.
  HEADERS_TOO_LARGE: { http: 431, grpc: GrpcStatus.RESOURCE_EXHAUSTED, summary: 'REST only: the request line and headers are over 16 KiB.' },
  REQUEST_TIMEOUT: { http: 408, grpc: GrpcStatus.DEADLINE_EXCEEDED, summary: 'The request did not arrive within headers_timeout_ms / request_timeout_ms (gRPC: a one-message call within request_timeout_ms).' },
  NOT_FOUND: { http: 404, grpc: GrpcStatus.UNIMPLEMENTED, summary: 'No such route (REST: no route has the path; gRPC: no such method).' },
  // REST only, as its router answers it (src/api/rest/methods.ts): gRPC has no methods of a path.
  METHOD_NOT_ALLOWED: { http: 405, grpc: GrpcStatus.UNIMPLEMENTED, summary: 'REST only: the path is served, but not with this method; the Allow header lists those it is.' },
  UNKNOWN_ENSEMBLE: { http: 404, grpc: GrpcStatus.NOT_FOUND, summary: 'No ensemble or model by that name.' },
  BAD_INPUT: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, summary: 'An input is missing, unknown, or not of the declared dtype or shape.' },
  BAD_BUDGET: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, summary: 'The budget is not a positive number, or is over the ensemble cap.' },
  ALL_MODELS_FAILED: { http: 502, grpc: GrpcStatus.UNAVAILABLE, summary: 'Every model of the ensemble failed; the annotations say how.' },
  DEADLINE_EXCEEDED: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED, summary: 'No usable result by the deadline; the annotations say which models were late.' },
  NO_CONSENSUS: { http: 422, grpc: GrpcStatus.FAILED_PRECONDITION, summary: 'majority-vote found no majority and on_no_majority is error.' },
  OVERLOADED: { http: 503, grpc: GrpcStatus.RESOURCE_EXHAUSTED, summary: 'Too many requests in flight or queued; retry later.' },
  RESPONSE_TOO_LARGE: { http: 500, grpc: GrpcStatus.RESOURCE_EXHAUSTED, summary: 'The answer is over a limit of its transport (grpc_max_send_bytes on a gRPC stream, max_record_bytes in stream mode).' },
  CANCELLED: { http: 499, grpc: GrpcStatus.CANCELLED, summary: 'The client cancelled or went away before the answer.' },
  NOT_READY: { http: 503, grpc: GrpcStatus.UNAVAILABLE, summary: 'The gateway is starting or draining.' },
  UNAUTHENTICATED: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED, summary: 'No credentials, or credentials the gateway does not accept.' },
  PERMISSION_DENIED: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, summary: 'The credentials are valid but lack the scope this call needs.' },
  RATE_LIMITED: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED, summary: 'Over the rate limit of this key or subject; retry after the time given.' },
  CONFIG_INVALID: { http: 422, grpc: GrpcStatus.FAILED_PRECONDITION, summary: 'A reloaded config has errors; the running config keeps serving.' },
  UNKNOWN_VERSION: { http: 404, grpc: GrpcStatus.NOT_FOUND, summary: 'The model has no such version in its repository.' },
  NO_PREVIOUS_VERSION: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION, summary: 'Rollback asked, but no passing version older than the serving one is kept.' },
  VERSION_EXISTS: { http: 409, grpc: GrpcStatus.ALREADY_EXISTS, summary: 'An upload names a version the model has already: versions are immutable.' },
  MODEL_REJECTED: { http: 422, grpc: GrpcStatus.FAILED_PRECONDITION, summary: 'A model version failed to load, to match its ensemble siblings, to keep every output its ensembles declare, or its validation gate; the serving version is unchanged.' },
  INTERNAL: { http: 500, grpc: GrpcStatus.INTERNAL, summary: 'A bug: the gateway failed in a way it did not expect.' },
} as const

export type ErrorCode = keyof typeof ErrorCatalogue

export class GatewayError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly grpcStatus: number
  /** Extra fields for the response body (e.g. annotations of a failed predict). */
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(code: ErrorCode, message: string, details?: Readonly<Record<string, unknown>>) {
    super(message)
    this.name = 'GatewayError'
    this.code = code
    this.statusCode = ErrorCatalogue[code].http
    this.grpcStatus = ErrorCatalogue[code].grpc
    this.details = details
  }
}

export const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ErrorCatalogue, code)

/** A request's tensor that does not decode is the client's fault: BAD_INPUT. */
export const inputFailure: Failure = Object.freeze({ role: 'input', error: (message: string) => new GatewayError('BAD_INPUT', message) })

/** Errors an executor reports for one model (they become that model's annotation, not a request error). */
export const ModelErrorCode = {
  MODEL_FAILED: 'MODEL_FAILED',
  OVERLOADED: 'OVERLOADED',
  WOULD_MISS_DEADLINE: 'WOULD_MISS_DEADLINE',
  NOT_NEEDED: 'NOT_NEEDED',
  UPSTREAM_UNAVAILABLE: 'UPSTREAM_UNAVAILABLE',
  UPSTREAM_BAD_RESPONSE: 'UPSTREAM_BAD_RESPONSE',
  UPSTREAM_ERROR: 'UPSTREAM_ERROR',
  CIRCUIT_OPEN: 'CIRCUIT_OPEN',
} as const
export type ModelErrorCode = (typeof ModelErrorCode)[keyof typeof ModelErrorCode]

/** Thrown by an executor: the model failed in a known way. */
export class ModelError extends Error {
  readonly code: ModelErrorCode
  /** true when the model was never started (the outcome is `skipped`, not `error`). */
  readonly skipped: boolean
  constructor(code: ModelErrorCode, message: string, skipped = false) {
    super(message)
    this.name = 'ModelError'
    this.code = code
    this.skipped = skipped
  }
}
