// The native predict response (REST body, gRPC's failure trailer, Kafka stream answers):
// docs/api.md documents this shape. Outputs are nested arrays in their shape.
import { toNested, type Tensor } from '../../tensor/index.ts'
import type { PredictResult } from '../../types.ts'
import { mapResultError } from '../errors.ts'

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

/** A predict that ran and failed: its code and message first, then the annotated result. */
export function failureBody(result: PredictResult): Record<string, unknown> {
  const mapped = mapResultError(result)
  return { code: mapped.code, message: mapped.message, ...resultBody(result) }
}
