// A config as the registry serves it: each repository model's executor spec pointed at the
// file of the version that serves (or the one a reload pins), plus its canary when a rollout
// runs. Only ONNX models come from the repository, so the spec is an OnnxSpec.
import { join } from 'node:path'
import type { GatewayConfig, ModelConfig } from '../config/load.ts'
import type { OnnxSpec } from '../executors/onnx/config.ts'
import type { VersionPin } from '../reload/version-source.ts'
import type { CanaryEvidence, CanaryPlan } from './canary.ts'
import type { RepositoryModelSettings } from './config.ts'
import type { ModelVersions } from './versions.ts'

export const repositorySettings = (model: ModelConfig): RepositoryModelSettings | undefined => (model.kind === 'onnx' ? (model.spec as OnnxSpec).repository : undefined)

function specAt(versions: ModelVersions, model: ModelConfig, version: number | undefined): OnnxSpec {
  const path = version === undefined ? join(versions.directory.dir, '(no version)') : versions.directory.modelFile(version)
  return { ...(model.spec as OnnxSpec), path, version: String(version ?? 'none') }
}

export function resolveVersions(
  config: GatewayConfig,
  pin: ReadonlyMap<string, VersionPin> | undefined,
  track: (model: ModelConfig) => ModelVersions | undefined,
  decide: (versions: ModelVersions, version: number, evidence: CanaryEvidence) => void,
): GatewayConfig {
  if (![...config.models.values()].some((m) => repositorySettings(m))) return config
  const models = new Map(config.models)
  for (const model of config.models.values()) {
    const versions = track(model)
    if (!versions) continue
    const pinned = pin?.get(model.name)
    const stable = typeof pinned === 'object' ? pinned.stable : (pinned ?? versions.serving)
    const canary = typeof pinned === 'object' ? pinned.canary : pinned === undefined ? versions.canary : undefined
    const settings = versions.settings.canary
    const plan: CanaryPlan | undefined =
      canary === undefined || !settings ? undefined : { version: String(canary), spec: specAt(versions, model, canary), settings, decide: (evidence) => decide(versions, canary, evidence) }
    const spec = specAt(versions, model, stable)
    models.set(model.name, { ...model, version: spec.version, spec, canary: plan })
  }
  return Object.freeze({ ...config, models })
}
