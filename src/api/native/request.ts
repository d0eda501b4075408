// The native predict request, whatever carries it (a REST body, a Kafka stream message):
// `{ "inputs": { "<input>": <nested array> | {shape, datatype, data} }, "budget_ms"?: n, "id"?: s }`.
// gRPC's specserve.v1 messages reach the same PredictRequest through their own codec.
import { GatewayError, inputFailure } from '../../errors.ts'
import { newRequestId, type Gateway } from '../../gateway.ts'
import { inputSpec } from '../../starter/ensemble.ts'
import { describe, tensorFromJson, type Tensor, type TensorMap } from '../../tensor/index.ts'
import type { PredictRequest } from '../../types.ts'

export const BODY_SHAPE = '{"inputs": {...}, "budget_ms"?: n, "id"?: s}'

/** Transport-level extras: an id or budget given outside the body (REST headers). */
export interface PredictExtras {
  readonly id?: string | string[] | undefined
  readonly budget?: string | string[] | undefined
}

/** A native predict body for `ensemble` as a PredictRequest; request errors throw GatewayError. */
export function readPredict(gateway: Gateway, ensemble: string, body: unknown, extras: PredictExtras = {}): PredictRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new GatewayError('BAD_REQUEST', `body must be a JSON object: ${BODY_SHAPE}`)
  const { inputs, budget_ms: budget, id } = body as { inputs?: unknown; budget_ms?: unknown; id?: unknown }
  return {
    id: readRequestId(id, extras.id),
    ensemble,
    inputs: readInputs(gateway, ensemble, inputs),
    budgetMs: parseBudget(budget, extras.budget),
  }
}

/**
 * The request's id: the body's, else the transport's (REST x-request-id), else a new UUID.
 * An empty id counts as none, as on every frontend (records and traces need one); an id that
 * is not a string is BAD_REQUEST (the native and V2 bodies alike).
 */
export function readRequestId(id: unknown, fallback?: string | string[]): string {
  if (id !== undefined && typeof id !== 'string') throw new GatewayError('BAD_REQUEST', `id must be a string, got ${describe(id)}`)
  if (id) return id
  return typeof fallback === 'string' && fallback !== '' ? fallback : newRequestId()
}

/** The body's `inputs` as tensors of the ensemble's declared inputs (the declaration gives nested arrays their datatype). */
export function readInputs(gateway: Gateway, ensemble: string, inputs: unknown): TensorMap {
  const ens = gateway.ensemble(ensemble)
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    throw new GatewayError('BAD_INPUT', 'inputs must be an object of named tensors')
  }
  const out: Record<string, Tensor> = {}
  const given = inputs as Record<string, unknown>
  for (const name in given) out[name] = tensorFromJson(given[name], inputSpec(ens, name), inputFailure)
  return out
}

/** A decimal number as a header carries one (`12`, `0.5`, `2e1`): not hex, not `Infinity`. */
const DECIMAL_NUMBER = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/

/** An explicit budget from the body, else the header (REST's `x-budget-ms`). */
export function parseBudget(body: unknown, header: string | string[] | undefined): number | undefined {
  if (body !== undefined) {
    if (typeof body !== 'number') throw new GatewayError('BAD_BUDGET', `budget_ms must be a number, got ${describe(body)}`)
    // JSON's 1e400 parses as Infinity: say so, rather than the null JSON would print for it.
    if (!Number.isFinite(body)) throw new GatewayError('BAD_BUDGET', `budget_ms must be a finite number, got ${body}`)
    return body
  }
  if (header === undefined) return undefined
  const text = Array.isArray(header) ? header[0] : header
  const value = text !== undefined && DECIMAL_NUMBER.test(text) ? Number(text) : Number.NaN
  if (!Number.isFinite(value)) throw new GatewayError('BAD_BUDGET', `x-budget-ms must be a decimal number of milliseconds, got ${describe(text)}`)
  return value
}
