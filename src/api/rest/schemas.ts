// The REST API described as JSON Schema, route by route, for GET /openapi.json. These
// schemas document; they do not validate: the handlers check every request themselves,
// with the error catalogue's codes and messages (a fastify/ajv validation would answer
// other codes, and cost the predict path a validation per request). test/api/rest/
// openapi.int.test.ts keeps this table and the registered routes in step, and
// openapi-statuses.int.test.ts the statuses each route answers and those it declares.
import type { FastifySchema } from 'fastify'
import { MAX_NAME_IN_PATH } from '../../config/forms.ts'

const Error = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string', description: 'stable code: docs/errors.md' }, message: { type: 'string' } },
  additionalProperties: true,
} as const

const OipError = { type: 'object', required: ['error'], properties: { error: { type: 'string' }, code: { type: 'string' }, id: { type: 'string', description: 'failed infers: the request id' } }, additionalProperties: true } as const

/**
 * A name or version in the path. The router refuses a longer segment (fastify's maxParamLength,
 * counted once percent-decoded), or one that is not valid percent-encoded UTF-8, 400
 * BAD_REQUEST before any route: so every route with a path parameter declares 400.
 */
const Segment = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_NAME_IN_PATH,
  description: `at most ${MAX_NAME_IN_PATH} characters: a longer one, or one that is not valid percent-encoded UTF-8, is 400 BAD_REQUEST`,
} as const
const NameParam = { type: 'object', required: ['name'], properties: { name: Segment } } as const
const VersionParams = { type: 'object', required: ['name', 'version'], properties: { name: Segment, version: Segment } } as const

/**
 * A dimension of a shape a client sends, as readShape (src/tensor/tensor.ts) reads it: an
 * integer, or a string of decimal digits (proto3 JSON writes an int64 so), either at most 2^53 - 1.
 */
const Dimension = {
  anyOf: [
    { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    { type: 'string', pattern: '^[0-9]{1,16}$', description: `decimal digits only (not "0x1e", "3e1" or " 30 "), a value up to ${Number.MAX_SAFE_INTEGER}` },
  ],
} as const

const Nested = { description: 'a tensor as nested arrays in its shape (numbers, booleans, or strings for BYTES and 64-bit integers)' } as const
const Explicit = {
  type: 'object',
  required: ['shape', 'data'],
  properties: { shape: { type: 'array', items: Dimension }, datatype: { type: 'string' }, data: { type: 'array' } },
} as const

const Annotation = {
  type: 'object',
  required: ['name', 'version', 'status', 'latency_ms', 'used'],
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    status: { enum: ['ok', 'error', 'timeout', 'cancelled', 'skipped'] },
    latency_ms: { type: 'number' },
    used: { type: 'boolean' },
    batch: { type: 'integer' },
    error: { type: 'object', required: ['code'], properties: { code: { type: 'string' }, message: { type: 'string', description: 'only for callers with the debug scope' } } },
  },
} as const

const PredictResponse = {
  type: 'object',
  required: ['id', 'ensemble', 'strategy', 'outputs', 'decision', 'budget_ms', 'elapsed_ms', 'models'],
  properties: {
    code: { type: 'string' },
    message: { type: 'string' },
    id: { type: 'string' },
    ensemble: { type: 'string' },
    strategy: { type: 'string' },
    outputs: { type: ['object', 'null'] },
    decision: { type: 'object' },
    budget_ms: { type: 'number' },
    elapsed_ms: { type: 'number' },
    models: { type: 'array', items: Annotation },
  },
} as const

/** A request id a client gives (src/api/native/request.ts checkRequestId). */
const RequestId = { type: 'string', description: 'at most 1024 bytes of UTF-8, no control characters' } as const

const V2Tensor = {
  type: 'object',
  required: ['name', 'datatype', 'shape'],
  properties: {
    name: { type: 'string' },
    datatype: { type: 'string' },
    shape: { type: 'array', items: Dimension },
    data: { type: 'array' },
    parameters: { type: 'object' },
  },
} as const

const Any = { type: 'object', additionalProperties: true } as const

/** The errors every guarded route may answer (401/403/429 only with an `auth` section). */
const refusals = (shape: typeof Error | typeof OipError) => ({ 401: shape, 403: shape, 429: shape }) as const
/**
 * The health routes' (src/security/rest.ts): every credential may call them, so never 403; but
 * a key or token the gateway does not accept is 401 (even where `auth.anonymous` opens them to
 * callers who send none), and a caller over its rate limit 429.
 */
const healthRefusals = (shape: typeof Error | typeof OipError) => ({ 401: shape, 429: shape }) as const

/** V2 readiness answered false: 400 (the spec reads health from the status code). */
const ModelNotReady = { type: 'object', required: ['name', 'ready'], properties: { name: { type: 'string' }, ready: { const: false } } } as const
/** 400 on a V2 model's readiness: not ready, or (the OipError) a name or version the router refused. */
const ReadyOr400 = { description: 'not ready, or a name or version in the path the router refused (BAD_REQUEST)', anyOf: [ModelNotReady, OipError] } as const
const failures = { 400: Error, 404: Error, 413: Error, ...refusals(Error), 502: PredictResponse, 503: Error, 504: PredictResponse, 422: PredictResponse } as const
const v2Failures = { 400: OipError, 404: OipError, 413: OipError, ...refusals(OipError), 502: OipError, 503: OipError, 504: OipError, 422: OipError } as const

/** The predict routes' headers (src/api/native/request.ts parseBudget, readRequestId). */
const BudgetHeader = { type: 'string', description: 'the latency budget in ms, a decimal number (not 0x10, not Infinity); with budget_ms too, the smaller' } as const
const RequestIdHeader = { ...RequestId, description: `${RequestId.description}; the body's id, when given, wins` } as const

/** The binary tensor data extension: the JSON request or answer, then the raw tensors (docs/api.md). */
const BinaryLength = { type: 'string', pattern: '^[0-9]+$', description: 'the length in bytes of the JSON part of the body, in decimal digits, when raw tensor bytes follow it (the binary tensor data extension)' } as const
const WithBinary = { type: 'string', format: 'binary', description: 'the JSON request (its length in Inference-Header-Content-Length), then the raw bytes of the inputs with binary_data_size, in order' } as const
const InferBody = {
  type: 'object',
  required: ['inputs'],
  properties: { id: RequestId, parameters: { type: 'object', properties: { budget_ms: { type: 'number', exclusiveMinimum: 0 } } }, inputs: { type: 'array', items: V2Tensor }, outputs: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } },
} as const

const infer: FastifySchema = {
  summary: 'Open Inference Protocol V2 infer on an ensemble (JSON, or JSON followed by binary tensor data)',
  headers: { type: 'object', properties: { 'x-budget-ms': BudgetHeader, 'x-request-id': RequestIdHeader, 'inference-header-content-length': BinaryLength } },
  body: { content: { 'application/json': { schema: InferBody }, 'application/octet-stream': { schema: WithBinary } } },
  response: {
    200: {
      description: 'the inference: JSON, or (an output asked for as binary) the JSON answer followed by the raw bytes of those outputs',
      headers: { 'inference-header-content-length': { ...BinaryLength, description: 'with application/octet-stream: the length of the JSON part' } },
      content: { 'application/json': { schema: Any }, 'application/octet-stream': { schema: { ...WithBinary, description: 'the JSON answer, then the raw bytes of the outputs with binary_data_size, in order' } } },
    },
    ...v2Failures,
  },
}

/** Each route's own documentation, by `METHOD url` as fastify registers it. */
const ROUTES: Readonly<Record<string, FastifySchema>> = {
  'POST /v1/ensembles/:name/predict': {
    summary: 'Predict with an ensemble within a latency budget',
    params: NameParam,
    headers: { type: 'object', properties: { 'x-budget-ms': BudgetHeader, 'x-request-id': RequestIdHeader } },
    body: {
      type: 'object',
      required: ['inputs'],
      properties: {
        inputs: { type: 'object', additionalProperties: { anyOf: [Nested, Explicit] } },
        budget_ms: { type: 'number', exclusiveMinimum: 0 },
        id: RequestId,
      },
    },
    response: { 200: PredictResponse, ...failures },
  },
  'GET /v1/ensembles': { summary: 'List the ensembles', response: { 200: Any, ...refusals(Error) } },
  // 503: NOT_READY for a name not (yet) served while the first load runs or the gateway drains (src/gateway.ts ensemble).
  'GET /v1/ensembles/:name': { summary: 'Describe an ensemble', params: NameParam, response: { 200: Any, 400: Error, 404: Error, 503: Error, ...refusals(Error) } },
  'GET /v1/models': { summary: 'List the models, each with its serving version', response: { 200: Any, ...refusals(Error) } },
  'GET /v1/models/:name': { summary: 'Describe a model, with its stats', params: NameParam, response: { 200: Any, 400: Error, 404: Error, ...refusals(Error) } },
  'GET /v1/models/:name/versions': { summary: 'A repository model\'s versions, each with its state and gate results', params: NameParam, response: { 200: Any, 400: Error, 404: Error, ...refusals(Error) } },
  'GET /v1/models/:name/versions/:version': { summary: 'One version of a repository model', params: VersionParams, response: { 200: Any, 400: Error, 404: Error, ...refusals(Error) } },
  'PUT /v1/models/:name/versions/:version': {
    summary: 'Upload a version (ONNX bytes as application/octet-stream): stored, loaded, gated, then served or rejected',
    params: VersionParams,
    // 200 kept aside (older), 201 serving, 202 a canary, 422 rejected (src/registry/routes.ts uploaded); 503 while draining.
    response: { 200: Any, 201: Any, 202: Any, 400: Error, 404: Error, 409: Error, 413: Error, 422: Any, 503: Error, ...refusals(Error) },
  },
  'POST /v1/models/:name/rollback': {
    summary: 'Serve the previous passing version',
    params: NameParam,
    // 400/413: a body (none is needed) that does not parse, or is over server.body_limit_bytes.
    // 422: the previous version no longer loads or passes; 503: the gateway is draining.
    response: { 200: Any, 400: Error, 404: Error, 409: Error, 413: Error, 422: Error, 503: Error, ...refusals(Error) },
  },
  'GET /healthz': { summary: 'Liveness', response: { 200: Any, ...healthRefusals(Error) } },
  'GET /readyz': { summary: 'Readiness: every embedded model loaded and warm', response: { 200: Any, 503: Any, ...healthRefusals(Error) } },
  // The Prometheus exporter writes the response itself, as `text/plain` (src/telemetry/routes.ts).
  'GET /metrics': {
    summary: 'Prometheus metrics (text exposition format 0.0.4)',
    response: { 200: { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, ...refusals(Error) },
  },
  'GET /openapi.json': { summary: 'This document', response: { 200: Any, ...refusals(Error) } },
  // 400/413: a body (none is needed) that does not parse, or is over server.body_limit_bytes.
  // 500: INTERNAL, a reload that failed for a reason of the machine (src/reload/index.ts rejected).
  // 503: NOT_READY while the first load runs or the gateway drains (src/gateway-reload.ts).
  'POST /admin/reload': { summary: 'Reload the config file', response: { 200: Any, 400: Error, 413: Error, 422: Error, 500: Error, 503: Error, ...refusals(Error) } },
  'GET /v2/': { summary: 'V2 server metadata', response: { 200: Any, ...refusals(OipError) } },
  'GET /v2/health/live': { summary: 'V2 liveness', response: { 200: Any, ...healthRefusals(OipError) } },
  'GET /v2/health/ready': { summary: 'V2 readiness (200 ready, 400 not)', response: { 200: Any, 400: Any, ...healthRefusals(OipError) } },
  // 503: as GET /v1/ensembles/{name}, for a name not (yet) served.
  'GET /v2/models/:name': { summary: 'V2 model metadata of an ensemble', params: NameParam, response: { 200: Any, 400: OipError, 404: OipError, 503: OipError, ...refusals(OipError) } },
  'GET /v2/models/:name/ready': { summary: 'V2 model readiness', params: NameParam, response: { 200: Any, 400: ReadyOr400, 404: OipError, ...refusals(OipError) } },
  'POST /v2/models/:name/infer': { ...infer, params: NameParam },
  'GET /v2/models/:name/versions/:version': { summary: 'V2 model metadata of an ensemble (version "1")', params: VersionParams, response: { 200: Any, 400: OipError, 404: OipError, 503: OipError, ...refusals(OipError) } },
  'GET /v2/models/:name/versions/:version/ready': { summary: 'V2 model readiness', params: VersionParams, response: { 200: Any, 400: ReadyOr400, 404: OipError, ...refusals(OipError) } },
  'POST /v2/models/:name/versions/:version/infer': { ...infer, params: VersionParams },
}

/**
 * What any route may answer, whatever it is: the listener's 408 REQUEST_TIMEOUT and 431
 * HEADERS_TOO_LARGE (always `{code, message}`: they come before any route, src/api/rest/server.ts
 * clientErrors), 503 NOT_READY once the gateway is stopping (server.ts closing, in the shape of
 * the API asked), and 500 INTERNAL (a bug: the error handlers). A route's own declaration of
 * one of these (readiness' 503) wins.
 */
const anyRoute = (shape: typeof Error | typeof OipError) => ({ 408: Error, 431: Error, 500: shape, 503: shape }) as const

/** The error shape of a route, `METHOD url`: the V2 one under /v2. */
const shapeOf = (route: string): typeof Error | typeof OipError => (route.includes(' /v2') ? OipError : Error)

/** Documentation of each route, by `METHOD url` as fastify registers it: its own, and what any route may answer. */
export const ROUTE_SCHEMAS: Readonly<Record<string, FastifySchema>> = Object.fromEntries(
  Object.entries(ROUTES).map(([route, schema]) => {
    const shape = shapeOf(route)
    // A route that reads a body (POST, PUT) may also answer 415 UNSUPPORTED_ENCODING, for one sent compressed (bodies.ts).
    const body = route.startsWith('POST ') || route.startsWith('PUT ') ? { 415: shape } : {}
    return [route, { ...schema, response: { ...anyRoute(shape), ...body, ...(schema.response as object) } }]
  }),
)

/**
 * The route's documentation with 405 METHOD_NOT_ALLOWED, for a route whose path parameters,
 * spelled `.` or `..`, take a request to a path served with other methods only (methods.ts
 * answers405: openapi.ts asks it of each route).
 */
export const withMethodNotAllowed = (route: string, schema: FastifySchema): FastifySchema => ({ ...schema, response: { ...(schema.response as object), 405: shapeOf(route) } })
