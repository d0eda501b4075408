// What the gateway serves, as the native API describes it (REST GET routes, gRPC
// ListEnsembles, GetEnsemble and GetModel).
import type { Gateway } from '../../gateway.ts'
import type { SelectConfig } from '../../config/load.ts'
import type { EnsembleRuntime } from '../../starter/ensemble.ts'
import { memberVersion } from '../../starter/outcomes.ts'
import type { Principal } from '../../security/guard.ts'
import { detailsForCaller } from '../../security/redact.ts'
import { shownSpec } from '../../tensor/index.ts'

export function listEnsembles(gateway: Gateway): Record<string, unknown>[] {
  return [...gateway.ensembles.values()].map((e) => ({ name: e.name, strategy: e.strategyName, models: e.models.map((m) => m.name), budget_ms: e.config.budget }))
}

export function describeEnsemble(ens: EnsembleRuntime): Record<string, unknown> {
  return {
    name: ens.name,
    description: ens.config.description ?? null,
    strategy: { name: ens.strategyName, ...ens.config.strategy.raw },
    models: ens.models.map((m, i) => ({ name: m.name, version: memberVersion(m, ens.executors[i]), kind: m.kind })),
    budget_ms: ens.config.budget,
    select: describeSelect(ens.config.select),
    ...(ens.config.shadow ? { shadow: ens.config.shadow } : {}),
    inputs: ens.inputs.map(shownSpec),
    outputs: ens.outputs.map(shownSpec),
  }
}

/** Member selection as configured, in the config's own words (`all` when `select:` is left out). */
export function describeSelect(select: SelectConfig): Record<string, unknown> {
  return select.policy === 'adaptive'
    ? { policy: select.policy, accuracy_target: select.accuracyTarget, explore: select.explore }
    : { policy: select.policy }
}

/** `principal`: the caller, who may not see an upstream's error text (security/redact.ts). */
export function describeModel(gateway: Gateway, name: string, principal?: Principal): Record<string, unknown> {
  const { info, details } = modelDescription(gateway, name, principal)
  return { ...info, ...details }
}

/** A model's description, and its executor's own details (describe()) as the caller may see them. */
export function modelDescription(gateway: Gateway, name: string, principal?: Principal): { info: Record<string, unknown>; details: Readonly<Record<string, unknown>> | undefined } {
  const { model, executor, stats } = gateway.model(name)
  let metadata: { inputs: unknown; outputs: unknown } = { inputs: null, outputs: null }
  try {
    const m = executor.metadata()
    metadata = { inputs: m.inputs.map(shownSpec), outputs: m.outputs.map(shownSpec) }
  } catch {
    // not loaded (yet, or not used by any ensemble): metadata stays null
  }
  const ensembles = [...gateway.config.ensembles.values()].filter((e) => e.models.includes(name)).map((e) => e.name)
  return { info: { name, version: memberVersion(model, executor), kind: model.kind, ensembles, ...metadata, stats: stats.toJSON() }, details: detailsForCaller(executor.describe?.(), principal) }
}

/** Every model with the version serving it (for a repository model, the registry's choice; for a remote one not pinned in YAML, the upstream's). */
export function listModels(gateway: Gateway): Record<string, unknown>[] {
  const ensembles = [...gateway.config.ensembles.values()]
  return [...gateway.models.values()].map(({ model, executor }) => ({
    name: model.name,
    kind: model.kind,
    version: memberVersion(model, executor),
    source: (model.entry as { source?: string }).source ?? 'config',
    ensembles: ensembles.filter((e) => e.models.includes(model.name)).map((e) => e.name),
  }))
}
