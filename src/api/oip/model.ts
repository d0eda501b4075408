// The Open Inference Protocol V2 view of the gateway, shared by REST and gRPC: each
// ensemble is a V2 model (version "1"), its decision and per-model annotations travel
// as response `parameters`. Frontends only encode what these functions return.
import { GatewayError } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import type { EnsembleRuntime } from '../../starter/ensemble.ts'
import { quote, shownSpec, type TensorSpec } from '../../tensor/index.ts'
import type { PredictResult } from '../../types.ts'
import { packageVersion } from '../../version.ts'

/** Ensembles have no versions of their own; V2 clients see each as version "1". */
export const ENSEMBLE_VERSION = '1'
export const PLATFORM = 'specserve_ensemble'
/** Extensions this server implements, as the spec names them (GET /v2, ServerMetadata). */
export const EXTENSIONS = ['binary_tensor_data'] as const


export function serverMetadata(): { name: string; version: string; extensions: string[] } {
  return { name: 'specserve', version: packageVersion, extensions: [...EXTENSIONS] }
}

/** The ensemble behind a V2 model name; a version other than "" or "1" is unknown. */
export function v2Model(gateway: Gateway, name: string, version: string | undefined): EnsembleRuntime {
  const ens = gateway.ensemble(name)
  if (version && version !== ENSEMBLE_VERSION) {
    throw new GatewayError('UNKNOWN_ENSEMBLE', `model ${quote(name)} has no version ${quote(version)} (versions: ${ENSEMBLE_VERSION})`)
  }
  return ens
}

/**
 * Ready = the gateway is ready and the name is a served ensemble (unknown names throw). While
 * the gateway loads, no ensemble is known yet: not ready (the spec's 400), not an error.
 */
export function modelReady(gateway: Gateway, name: string, version: string | undefined): boolean {
  if (!gateway.ready && !gateway.ensembles.has(name)) return false
  v2Model(gateway, name, version)
  return gateway.ready
}

export interface V2ModelMetadata {
  name: string
  versions: string[]
  platform: string
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  parameters: Record<string, string>
}

export function modelMetadata(ens: EnsembleRuntime): V2ModelMetadata {
  return {
    name: ens.name,
    versions: [ENSEMBLE_VERSION],
    platform: PLATFORM,
    inputs: ens.inputs.map(shownSpec),
    outputs: ens.outputs.map(shownSpec),
    parameters: { strategy: ens.strategyName, models: ens.models.map((m) => m.name).join(',') },
  }
}

export type ParameterValue = string | number | boolean

/**
 * Response parameters carrying the decision and the annotations. Scalars stay scalars;
 * structured values (votes, per-model annotations) are JSON strings because V2
 * parameter values are scalar by spec.
 */
export function resultParameters(result: PredictResult): Record<string, ParameterValue> {
  const params: Record<string, ParameterValue> = {
    ensemble: result.ensemble,
    strategy: result.strategy,
    reason: result.decision.reason,
    budget_ms: result.budget_ms,
    elapsed_ms: result.elapsed_ms,
    models: JSON.stringify(result.models),
  }
  if (result.decision.chosen !== null) params.chosen = result.decision.chosen
  if (result.decision.votes !== null) params.votes = JSON.stringify(result.decision.votes)
  if (result.error) params.error_code = result.error.code
  return params
}

/** How V2 bodies name the budget (`parameters.budget_ms`) in their errors. */
export const V2_BUDGET = 'parameter budget_ms'

/** Picks the requested outputs (all when none are named); an unknown name is BAD_INPUT. */
export function requestedOutputs(ens: EnsembleRuntime, names: readonly string[]): readonly string[] {
  if (names.length === 0) return ens.outputs.map((o) => o.name)
  for (const name of names) {
    if (!ens.outputs.some((o) => o.name === name)) {
      throw new GatewayError('BAD_INPUT', `unknown output ${quote(name)} (model "${ens.name}" has: ${ens.outputs.map((o) => o.name).join(', ')})`)
    }
  }
  return names
}
