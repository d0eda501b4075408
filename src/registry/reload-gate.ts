// The gate of a load or reload: each repository model it loads is judged on the executor the
// load built, before anything is swapped in. A failed gate refuses the load, with the reason.
import type { ConfigIssue } from '../config/yaml.ts'
import type { ModelRuntime } from '../model-runtimes.ts'
import { CanaryExecutor } from './canary.ts'
import { runGate } from './gate.ts'
import { repositorySettings } from './resolve.ts'
import type { GateReport } from './version-meta.ts'
import type { ModelVersions } from './versions.ts'

/**
 * Gates the repository models among `loaded` (`known` finds their versions) and hands each
 * report to `record`. Returns the issues of the gates that failed.
 */
export async function gateLoaded<V = ModelVersions>(
  loaded: readonly ModelRuntime[],
  known: (name: string) => V | undefined,
  record: (versions: V, version: number, report: GateReport) => void,
): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = []
  for (const { model, executor } of loaded) {
    const versions = known(model.name)
    // The settings of the config being loaded: a reload's gate is its own, even before it is swapped in.
    const settings = repositorySettings(model)
    if (!versions || !settings) continue
    // A canary rollout loads the serving version again beside the canary: the canary is what is judged.
    const [version, judged] = executor instanceof CanaryExecutor && model.canary ? [Number(model.canary.version), executor.canary] : [Number(model.version), executor]
    const report = await runGate(judged, settings.validation)
    record(versions, version, report)
    if (!report.passed) issues.push({ path: `models.${model.name}`, message: `validation gate failed: ${report.reason}` })
  }
  return issues
}
