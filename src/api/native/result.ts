// The native predict response (REST body, gRPC's failure trailer, Kafka stream answers):
// docs/api.md documents this shape. Outputs are nested arrays in their shape. The hot path
// writes the body as text in one go (resultJson); resultBody is the same as an object.
import { nestedMap, nestedMapJson } from '../../tensor/index.ts'
import type { PredictResult } from '../../types.ts'
import { mapResultError } from '../errors.ts'
import { decisionJson, modelsJson, numberJson } from '../../result-json.ts'

export function resultBody(result: PredictResult): Record<string, unknown> {
  const outputs = result.outputs ? nestedMap(result.outputs) : null
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

/** resultBody (or failureBody, for a failed predict) as JSON text, with no intermediate objects for the outputs. */
export function resultJson(result: PredictResult): string {
  let head = ''
  if (result.error) {
    const mapped = mapResultError(result)
    head = `"code":${JSON.stringify(mapped.code)},"message":${JSON.stringify(mapped.message)},`
  }
  const outputs = result.outputs ? nestedMapJson(result.outputs) : 'null'
  return (
    `{${head}"id":${JSON.stringify(result.id)},"ensemble":${JSON.stringify(result.ensemble)},"strategy":${JSON.stringify(result.strategy)},` +
    `"outputs":${outputs},"decision":${decisionJson(result.decision)},"budget_ms":${numberJson(result.budget_ms)},"elapsed_ms":${numberJson(result.elapsed_ms)},` +
    `"models":${modelsJson(result.models)}}`
  )
}
