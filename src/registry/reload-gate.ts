// The gate of a load or reload: each repository model it loads is judged on the executor the
// load built, before anything is swapped in. A failed gate refuses the load, with the reason.
import type { ConfigIssue } from '../config/yaml.ts'
import type { ModelRuntime } from '../model-runtimes.ts'
import { CanaryExecutor } from './canary.ts'
import { outputsRefusal } from './compatible.ts'
import { runGate } from './gate.ts'
import { repositorySettings } from './resolve.ts'
import type { GateReport } from './store.ts'
import type { ModelVersions } from './versions.ts'

/**
 * Gates the repository models among `loaded` (`known` finds their versions) and hands each
 * report to `record`. Returns the issues of the gates that failed. `serving`: the models of
 * the state serving beside this load (none at a start), whose outputs a newer version keeps.
 */
export async function gateLoaded<V = ModelVersions>(
  loaded: readonly ModelRuntime[],
  known: (name: string) => V | undefined,
  record: (versions: V, version: number, report: GateReport) => void,
  serving?: ReadonlyMap<string, ModelRuntime>,
): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = []
  for (const runtime of loaded) {
    const { model, executor } = runtime
    const versions = known(model.name)
    // The settings of the config being loaded: a reload's gate is its own, even before it is swapped in.
    const settings = repositorySettings(model)
    if (!versions || !settings) continue
    // Checked before the gate runs: a version that cannot answer for the serving one is refused whatever its gate would say.
    const dropped = droppedOutputs(runtime, serving?.get(model.name))
    if (dropped) {
      issues.push({ path: `models.${model.name}`, message: dropped })
      continue
    }
    // A canary rollout loads the serving version again beside the canary: the canary is what is judged.
    const [version, judged] = executor instanceof CanaryExecutor && model.canary ? [Number(model.canary.version), executor.canary] : [Number(model.version), executor]
    const report = await runGate(judged, settings.validation)
    record(versions, version, report)
    if (!report.passed) issues.push({ path: `models.${model.name}`, message: `validation gate failed: ${report.reason}` })
  }
  return issues
}

/**
 * Why a repository model's version newer than the one serving (a registry swap, or a reload
 * that serves another version) cannot replace it: it lacks one of the serving version's
 * outputs, which every answer of the ensembles using the model would lose in silence.
 * Undefined when it can, or when there is nothing to compare: nothing serving, the same
 * version loaded again (a reload), or an older one (a rollback goes back to a version that
 * passed before). A canary is compared as its pair loads (CanaryExecutor.load).
 */
function droppedOutputs({ model, executor }: ModelRuntime, before: ModelRuntime | undefined): string | undefined {
  if (!before || !repositorySettings(before.model)) return undefined
  const version = Number(model.version)
  if (!(version > Number(before.model.version))) return undefined
  return outputsRefusal(`version ${version}`, executor.metadata().outputs, before.executor.metadata().outputs)
}
