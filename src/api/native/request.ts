// The native predict request, whatever carries it (a REST body, a Kafka stream message):
// `{ "inputs": { "<input>": <nested array> | {shape, datatype, data} }, "budget_ms"?: n, "id"?: s }`.
// gRPC's specserve.v1 messages reach the same PredictRequest through their own codec.
import { checkBudget, overCap } from '../../starter/budget.ts'
import { isUtf8 } from 'node:buffer'
import { GatewayError, inputFailure } from '../../errors.ts'
import { newRequestId, type Gateway } from '../../gateway.ts'
import { checkInputs, inputSpec, type EnsembleRuntime } from '../../starter/ensemble.ts'
import { describe, tensorFromJson, type Tensor, type TensorMap } from '../../tensor/index.ts'
import type { PredictRequest } from '../../types.ts'
import { DECIMAL } from '../../decimal.ts'

export const BODY_SHAPE = '{"inputs": {...}, "budget_ms"?: n, "id"?: s}'

/** Transport-level extras: an id or budget given outside the body (REST headers). */
export interface PredictExtras {
  readonly id?: string | string[] | undefined
  readonly budget?: string | string[] | undefined
}

/** A native predict body for `ensemble` as a PredictRequest; request errors throw GatewayError. */
export function readPredict(gateway: Gateway, ensemble: string, body: unknown, extras: PredictExtras = {}): PredictRequest {
  // In the order every frontend reads a request: the ensemble, the body, the id, the inputs, the budget.
  const ens = gateway.ensemble(ensemble)
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new GatewayError('BAD_REQUEST', `body must be a JSON object: ${BODY_SHAPE}`)
  const { inputs, budget_ms: budget, id } = body as { inputs?: unknown; budget_ms?: unknown; id?: unknown }
  const requestId = readRequestId(id, extras.id)
  const tensors = inputsOf(ens, inputs)
  return { id: requestId, ensemble, inputs: tensors, budgetMs: readBudget(ens, tensors, budget, extras.budget) }
}

/**
 * The request's id: the body's, else the transport's (REST x-request-id), else a new UUID.
 * An empty id counts as none, as on every frontend (records and traces need one); an id that
 * is not a string is BAD_REQUEST (the native and V2 bodies alike), and so is one checkRequestId refuses.
 */
export function readRequestId(id: unknown, fallback?: string | string[]): string {
  if (id !== undefined && typeof id !== 'string') throw new GatewayError('BAD_REQUEST', `id must be a string, got ${describe(id)}`)
  if (id) return checkRequestId(id, 'id')
  return headerRequestId(fallback) ?? newRequestId()
}

/** x-request-id as a predict takes it (UTF-8 text within the id rules, else BAD_REQUEST); undefined when absent or empty. */
function headerRequestId(header: string | string[] | undefined): string | undefined {
  const text = headerValue(header, 'x-request-id')
  return text === undefined ? undefined : checkRequestId(text, 'x-request-id')
}

/** A header read as text (headerText: BAD_REQUEST naming `field` when not UTF-8); undefined when absent or empty. */
export const headerValue = (header: string | string[] | undefined, field: string): string | undefined =>
  typeof header === 'string' && header !== '' ? headerText(header, field) : undefined

/**
 * A header value as the UTF-8 text a client sends: node's HTTP/1 parser reads each byte as one
 * Latin-1 character (`€` arrives as three); BAD_REQUEST when those bytes are not UTF-8. A value
 * that holds a character past U+00FF was not read that way (a test's inject, a proxy that
 * decoded it): taken as it is. Every header read as text goes through it (x-request-id,
 * x-model-description).
 */
function headerText(value: string, field: string): string {
  let high = false
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c > 0xff) return value
    if (c >= 0x80) high = true
  }
  if (!high) return value
  const bytes = Buffer.from(value, 'latin1')
  if (!isUtf8(bytes)) throw new GatewayError('BAD_REQUEST', `${field} must be UTF-8 text`)
  return bytes.toString('utf8')
}

/**
 * Longest request id, in UTF-8 bytes. An id is written into every serving record, log line,
 * stream answer and gRPC failure trailer: 1 KiB is far above any UUID, trace id or composite
 * key, and escaped for the `specserve-result` trailer (3 bytes at most per byte) it still
 * leaves that trailer room under gRPC clients' 8 KiB metadata limit.
 */
export const MAX_ID_BYTES = 1024
/** C0 controls, DEL and C1 controls: a newline or an escape sequence has no place in a log line or a header. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/

/** Whether `text` is at most MAX_ID_BYTES of UTF-8 (1 to 3 bytes per UTF-16 unit: counted only when the length alone cannot tell). */
export const withinIdBytes = (text: string): boolean => text.length <= MAX_ID_BYTES / 3 || (text.length <= MAX_ID_BYTES && Buffer.byteLength(text, 'utf8') <= MAX_ID_BYTES)

/** A client's request id (`field` names it in the error), refused with BAD_REQUEST when over MAX_ID_BYTES or holding a control character. */
export function checkRequestId(id: string, field: string): string {
  if (!withinIdBytes(id)) {
    throw new GatewayError('BAD_REQUEST', `${field} is ${Buffer.byteLength(id, 'utf8')} bytes of UTF-8, over the ${MAX_ID_BYTES} a request id may have`)
  }
  if (CONTROL_CHARACTER.test(id)) throw new GatewayError('BAD_REQUEST', `${field} must not contain control characters, got ${describe(id)}`)
  // A lone surrogate (JSON's "\ud800") has no UTF-8: records and logs would hold U+FFFD instead.
  if (!id.isWellFormed()) throw new GatewayError('BAD_REQUEST', `${field} must be text (Unicode scalar values), got a lone surrogate`)
  return id
}

/**
 * x-request-id as a request's log lines may name it (server.ts genReqId): the id a predict
 * would take from it, read and checked as readRequestId does; undefined when absent, empty or
 * refused, and the log names the request by a counter instead.
 */
export function loggableRequestId(header: string | string[] | undefined): string | undefined {
  try {
    return headerRequestId(header)
  } catch {
    return undefined
  }
}

/** The body's `inputs` as tensors of the ensemble's declared inputs (the declaration gives nested arrays their datatype). */
export function readInputs(gateway: Gateway, ensemble: string, inputs: unknown): TensorMap {
  return inputsOf(gateway.ensemble(ensemble), inputs)
}

function inputsOf(ens: EnsembleRuntime, inputs: unknown): TensorMap {
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    throw new GatewayError('BAD_INPUT', 'inputs must be an object of named tensors')
  }
  const out: Record<string, Tensor> = {}
  const given = inputs as Record<string, unknown>
  for (const name in given) out[name] = tensorFromJson(given[name], inputSpec(ens, name), inputFailure)
  return out
}

/**
 * parseBudget's budget for a request whose inputs were read: a budget error is thrown only
 * once the inputs are known whole (missing, empty or extra inputs are BAD_INPUT first, as
 * every frontend orders its errors). Checked only on that error, so a good request pays nothing.
 */
export function readBudget(ens: EnsembleRuntime, inputs: TensorMap, body: unknown, header: string | string[] | undefined, field = 'budget_ms'): number | undefined {
  try {
    return parseBudget(body, header, ens.config.budget.max, field)
  } catch (err) {
    checkInputs(ens, inputs)
    throw err
  }
}

/**
 * The explicit budget: the body's (`field`: `budget_ms`, or the V2 `parameter budget_ms`), the
 * header's (REST's `x-budget-ms`), or the smaller of the
 * two when both are given, as gRPC takes the smallest of `budget_ms` and the deadline. Either
 * one malformed, not positive or over `maxMs` (the ensemble's cap) is BAD_BUDGET, each named
 * as itself; with both given, either one over the cap is refused, as gRPC refuses a `budget_ms`
 * over it whatever the deadline.
 */
export function parseBudget(body: unknown, header: string | string[] | undefined, maxMs: number, field = 'budget_ms'): number | undefined {
  // Here, not only in the starter, so that the V2 parameter is named as itself.
  const budget = body === undefined ? undefined : checkBudget(body, field, maxMs)
  if (header === undefined) return budget
  const text = Array.isArray(header) ? header[0] : header
  const value = text !== undefined && DECIMAL.test(text.trim()) ? Number(text) : Number.NaN
  if (!Number.isFinite(value)) throw new GatewayError('BAD_BUDGET', `x-budget-ms must be a decimal number of milliseconds, got ${describe(text)}`)
  // The header's own mistakes under its own name (the starter would name them budget_ms).
  if (value <= 0) throw new GatewayError('BAD_BUDGET', `x-budget-ms must be a positive number of milliseconds, got ${describe(text)}`)
  if (value > maxMs) throw overCap('x-budget-ms', value, maxMs)
  return budget === undefined ? value : Math.min(budget, value)
}

