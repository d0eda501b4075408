// One config's models and ensembles, and how such a state is made ready to serve: the models
// its ensembles use are loaded (each executor once, whichever state it is kept into), its
// ensembles built, and last the registry's gate run on what it has not passed yet. The first
// load, a start that falls back to earlier versions, a reload and a trial all build this way.
import type { GatewayConfig } from './config/load.ts'
import type { ConfigIssue } from './config/yaml.ts'
import type { Executor } from './executors/types.ts'
import type { ModelRuntime } from './model-runtimes.ts'
import { IncompatibleVersion, keptOutputsRefusals, lostOutputs } from './registry/compatible.ts'
import type { VersionSource } from './reload/version-source.ts'
import { buildEnsemble, type EnsembleRuntime } from './starter/ensemble.ts'
import type { RunScope } from './starter/run-hooks.ts'

/** One config's models and ensembles. A reload builds a new one and swaps it in whole. */
export interface GatewayState extends RunScope {
  readonly config: GatewayConfig
  readonly models: Map<string, ModelRuntime>
  readonly ensembles: Map<string, EnsembleRuntime>
}

export class StateBuilder {
  private readonly versions: VersionSource | undefined
  private readonly loaded = new WeakSet<Executor>()
  /** Executors the registry's gate passed (a start that falls back loads again, and gates what it has not gated). */
  private readonly gated = new WeakSet<Executor>()

  constructor(versions: VersionSource | undefined) {
    this.versions = versions
  }

  /**
   * Loads the state's used models not loaded yet, then builds its ensembles. Returns every
   * issue. `arriving`: models whose new versions came through the registry (a registry swap):
   * an ensemble using one must keep the outputs it declares in `previous`, or the swap is
   * refused, unless the model's `outputs_may_drop` lets them go (compatible.ts).
   */
  async build(state: GatewayState, previous?: GatewayState, arriving?: ReadonlySet<string>): Promise<ConfigIssue[]> {
    const { config } = state
    const issues: ConfigIssue[] = []
    const at = (path: string, message: string): void => {
      issues.push(config.source.issue(path, message))
    }
    const used = new Set([...config.ensembles.values()].flatMap((e) => [...e.models, ...(e.shadow?.models ?? [])]))
    // A repository model's version is loaded and gated before it serves, even with no ensemble using it yet.
    for (const name of config.models.keys()) if (this.versions?.isRepositoryModel(name)) used.add(name)
    const loading = [...state.models.values()].filter((m) => used.has(m.model.name) && !this.loaded.has(m.executor))
    await Promise.all(
      loading
        .map((m) =>
          m.executor.load().then(
            () => this.loaded.add(m.executor),
            // A version that loaded but cannot answer for the serving one (a canary) is refused for that, not said to have failed to load.
            (err: unknown) => at(`models.${m.model.name}`, err instanceof IncompatibleVersion ? err.message : `failed to load: ${(err as Error).message}`),
          ),
        ),
    )
    if (issues.length) return issues
    for (const ens of config.ensembles.values()) {
      // Request counters follow the ensemble's name across reloads.
      const built = buildEnsemble(ens, (name) => state.models.get(name)!, previous?.ensembles.get(ens.name)?.requestStats, config.calibration)
      for (const issue of built.issues) at(issue.path, issue.message)
      if (built.ensemble) state.ensembles.set(ens.name, built.ensemble)
    }
    // Before the gate: a version that takes an output from its ensembles is refused whatever its gate would say.
    if (!issues.length && previous && arriving?.size) {
      const lost = lostOutputs(previous.ensembles, state.ensembles)
      for (const refusal of keptOutputsRefusals(lost, arriving, config.models, (name) => state.models.get(name)!.executor.metadata().outputs)) at(refusal.path, refusal.message)
    }
    // Last, once everything else holds: the registry's gate on the models not gated yet (those this build loaded).
    const ungated = [...state.models.values()].filter((m) => used.has(m.model.name) && !this.gated.has(m.executor))
    if (!issues.length && this.versions && ungated.length) {
      const failed = await this.versions.gate(ungated)
      for (const issue of failed) at(issue.path, issue.message)
      if (!failed.length) for (const m of ungated) this.gated.add(m.executor)
    }
    return issues
  }
}
