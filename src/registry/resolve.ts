// A config as the registry serves it: each repository model's executor spec pointed at the
// file of the version that serves (or the one a reload pins), plus its canary when a rollout
// runs. Only ONNX models come from the repository, so the spec is an OnnxSpec.
import { join } from 'node:path'
import type { GatewayConfig, ModelConfig } from '../config/load.ts'
import { ConfigError, type ConfigIssue } from '../config/yaml.ts'
import type { OnnxSpec } from '../executors/onnx/config.ts'
import type { VersionPin } from '../reload/version-source.ts'
import type { CanaryEvidence, CanaryPlan } from './canary.ts'
import type { RepositoryModelSettings } from './config.ts'
import { allowedBy } from './version-rules.ts'
import type { ModelVersions } from './versions.ts'

export const repositorySettings = (model: ModelConfig): RepositoryModelSettings | undefined => (model.kind === 'onnx' ? (model.spec as OnnxSpec).repository : undefined)

/** Does `config` serve the model `name` from the repository? */
export function fromRepository(config: GatewayConfig, name: string): boolean {
  const model = config.models.get(name)
  return model !== undefined && repositorySettings(model) !== undefined
}

/**
 * A registry swap the config being served has outdated since it was queued (a reload narrowed
 * the version_policy, or dropped the model): nothing to say about the version itself, which
 * is left as it is, never rejected for it.
 */
export class SwapOutdated extends ConfigError {}

function specAt(versions: ModelVersions, model: ModelConfig, version: number | undefined): OnnxSpec {
  const path = version === undefined ? join(versions.directory.dir, '(no version)') : versions.directory.modelFile(version)
  return { ...(model.spec as OnnxSpec), path, version: String(version ?? 'none') }
}

/**
 * A reload (no pin for a model) serves what serves now, under the config's own version_policy:
 * one that excludes the serving version serves the highest passing version it allows instead
 * (none: the reload is refused), and drops a canary it excludes. The registry's settings are
 * the config's only once it is swapped in (Registry.committed): a refused reload changes nothing.
 */
export function resolveVersions(
  config: GatewayConfig,
  pin: ReadonlyMap<string, VersionPin> | undefined,
  track: (model: ModelConfig) => ModelVersions | undefined,
  decide: (versions: ModelVersions, version: number, evidence: CanaryEvidence) => void,
): GatewayConfig {
  const issues: ConfigIssue[] = []
  // A swap for a model this config does not serve from the repository (a reload dropped it meanwhile) would swap nothing.
  for (const name of pin?.keys() ?? []) {
    if (!fromRepository(config, name)) issues.push({ path: `models.${name}`, message: 'is no longer a source: repository model of the config being served' })
  }
  if (issues.length) throw new SwapOutdated(config.file, issues)
  if (![...config.models.values()].some((m) => repositorySettings(m))) return config
  const models = new Map(config.models)
  for (const model of config.models.values()) {
    const versions = track(model)
    const settings = repositorySettings(model)
    if (!versions || !settings) continue
    const pinned = pin?.get(model.name)
    let stable = typeof pinned === 'object' ? pinned.stable : (pinned ?? versions.serving)
    let canary = typeof pinned === 'object' ? pinned.canary : pinned === undefined ? versions.canary : undefined
    if (pinned !== undefined) {
      // Judged under a policy a config reload has narrowed since (it committed first): not served.
      const excluded = [stable, canary].find((v) => v !== undefined && !allowedBy(settings.policy, v))
      if (excluded !== undefined) {
        const at = ['models', model.name, 'version_policy']
        throw new SwapOutdated(config.file, [config.source.issue(at, `version ${excluded} is not in version_policy.specific`)])
      }
    } else {
      const allowed = (version: number): boolean => allowedBy(settings.policy, version)
      if (canary !== undefined && !allowed(canary)) canary = undefined
      if (stable !== undefined && !allowed(stable)) {
        const serving = stable
        stable = versions.passedUnder(settings.policy)
        if (stable === undefined) {
          const at = ['models', model.name, 'version_policy']
          issues.push(config.source.issue(at, `allows neither the serving version ${serving} nor any other that passed: version ${serving} keeps serving`))
          continue
        }
      }
    }
    const trying = canary
    const plan: CanaryPlan | undefined =
      trying === undefined || !settings.canary ? undefined : { version: String(trying), spec: specAt(versions, model, trying), settings: settings.canary, decide: (evidence) => decide(versions, trying, evidence) }
    const spec = specAt(versions, model, stable)
    models.set(model.name, { ...model, version: spec.version, spec, canary: plan })
  }
  if (issues.length) throw new ConfigError(config.file, issues)
  return Object.freeze({ ...config, models })
}
