import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../../errors.ts'
import { newRequestId, type Gateway } from '../../gateway.ts'
import { tensorFromJson, toNested } from '../../tensor.ts'
import type { PredictResult, Tensor, TensorMap } from '../../types.ts'
import { mapResultError } from '../errors.ts'

interface PredictBody {
  inputs?: unknown
  budget_ms?: unknown
  id?: unknown
}

/** Reads the body's `inputs` as tensors of the ensemble's declared inputs (the spec gives nested arrays their dtype). */
export function readInputs(gateway: Gateway, ensemble: string, inputs: unknown): TensorMap {
  const ens = gateway.ensemble(ensemble)
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    throw new GatewayError('BAD_INPUT', 'body.inputs must be an object of named tensors')
  }
  const out: Record<string, Tensor> = {}
  const given = inputs as Record<string, unknown>
  for (const name in given) {
    const spec = ens.inputs.find((s) => s.name === name)
    if (!spec) throw new GatewayError('BAD_INPUT', `unknown input "${name}" (this ensemble takes: ${ens.inputs.map((s) => s.name).join(', ')})`)
    out[name] = tensorFromJson(given[name], spec)
  }
  return out
}

export function parseBudget(body: unknown, header: string | string[] | undefined): number | undefined {
  if (body !== undefined) {
    if (typeof body !== 'number') throw new GatewayError('BAD_BUDGET', `budget_ms must be a number, got ${JSON.stringify(body)}`)
    return body
  }
  if (header === undefined) return undefined
  const value = Number(Array.isArray(header) ? header[0] : header)
  if (Number.isNaN(value)) throw new GatewayError('BAD_BUDGET', `x-budget-ms must be a number, got ${JSON.stringify(header)}`)
  return value
}

/** The documented response shape (also the failure body, with `code` and `message` first). */
export function resultBody(result: PredictResult): Record<string, unknown> {
  let outputs: Record<string, unknown> | null = null
  if (result.outputs) {
    outputs = {}
    for (const name in result.outputs) outputs[name] = toNested(result.outputs[name] as Tensor)
  }
  return {
    id: result.id,
    ensemble: result.ensemble,
    strategy: result.strategy,
    outputs,
    decision: result.decision,
    budget_ms: result.budget_ms,
    elapsed_ms: result.elapsed_ms,
    models: result.models,
  }
}

export function registerPredictRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.post<{ Params: { name: string }; Body: PredictBody }>('/v1/ensembles/:name/predict', async (request, reply) => {
    const body = request.body
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new GatewayError('BAD_REQUEST', 'body must be a JSON object: {"inputs": {...}, "budget_ms"?: n, "id"?: s}')
    }
    if (body.id !== undefined && typeof body.id !== 'string') throw new GatewayError('BAD_REQUEST', 'id must be a string')
    const ensemble = request.params.name
    const inputs = readInputs(gateway, ensemble, body.inputs)
    const header = request.headers['x-request-id']
    const id = body.id ?? (typeof header === 'string' ? header : newRequestId())
    const result = await gateway.predict({ id, ensemble, inputs, budgetMs: parseBudget(body.budget_ms, request.headers['x-budget-ms']) })
    if (!result.error) return resultBody(result)
    const mapped = mapResultError(result)
    return reply.status(mapped.http).send({ code: mapped.code, message: mapped.message, ...resultBody(result) })
  })
}
