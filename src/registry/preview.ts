// What `specserve validate` says about the repository, without writing anything: which version
// of each repository model would serve, or that the seed `path:` would be imported, or that
// nothing could serve (a config error at the entry's line). Opening the registry would create
// model directories and import seeds; this only reads version directories and meta.json.
import { existsSync } from 'node:fs'
import type { GatewayConfig, ModelConfig } from '../config/load.ts'
import type { ConfigIssue } from '../config/yaml.ts'
import type { OnnxSpec } from '../executors/onnx/config.ts'
import { repositorySettings } from './resolve.ts'
import type { VersionPolicy } from './config.ts'
import { ModelDirectory, type VersionMeta } from './store.ts'
import { allowedBy, newMeta, servingChoice } from './version-rules.ts'
import type { ModelVersions } from './versions.ts'

export interface RepositoryPreview {
  /** The config with each repository model pointed at the file that would serve (a version, or its seed). */
  readonly config: GatewayConfig
  /** What serve would do, one line per repository model, located like issues. */
  readonly notes: ConfigIssue[]
  /** Models with nothing to serve. */
  readonly issues: ConfigIssue[]
}

export function previewRepository(config: GatewayConfig): RepositoryPreview {
  const notes: ConfigIssue[] = []
  const issues: ConfigIssue[] = []
  const repository = config.repository
  if (!repository) return { config, notes, issues }
  const located = (path: string, message: string): ConfigIssue => ({ path, ...(config.source.locate(path.split('.')) ?? {}), message })
  const missing = !existsSync(repository.path)
  const models = new Map(config.models)
  for (const model of config.models.values()) {
    const settings = repositorySettings(model)
    if (!settings) continue
    const directory = new ModelDirectory(repository.path, model.name)
    const allowed = (v: number): boolean => allowedBy(settings.policy, v)
    // A version directory holding a model but no meta.json yet is an arrival, judged as never judged.
    const metas = directory.versions().flatMap((v): VersionMeta[] => {
      const meta = directory.readMeta(v)
      return meta ? [meta] : directory.hasModel(v) ? [newMeta(v, new Uint8Array(), 'directory', null)] : []
    })
    const version = servingChoice(metas, allowed, (v) => directory.hasModel(v))
    let path: string
    if (version !== undefined) {
      path = directory.modelFile(version)
      notes.push(located(`models.${model.name}.source`, `version ${version} would serve (${path})`))
    } else if (settings.seed && directory.versions().length === 0) {
      path = settings.seed
      notes.push(located(`models.${model.name}.source`, `no version in ${directory.dir} yet: serve would import path: ${settings.seed} as version 1${missing ? ` (and create the repository ${repository.path})` : ''}`))
    } else {
      issues.push(located(`models.${model.name}.source`, nothingToServe(directory, metas, settings.policy)))
      continue
    }
    models.set(model.name, { ...model, version: String(version ?? 1), spec: { ...(model.spec as OnnxSpec), path } })
  }
  if (missing && issues.length) issues.unshift(located('repository.path', `repository directory ${repository.path} does not exist`))
  return { config: Object.freeze({ ...config, models }), notes, issues }
}

/** The repository models with no version to serve at start (`open`: a model's versions, opened), as issues at their entries. */
export function unservable(config: GatewayConfig, open: (model: ModelConfig) => ModelVersions | undefined): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  for (const model of config.models.values()) {
    const versions = open(model)
    if (!versions || versions.serving !== undefined) continue
    issues.push({ path: `models.${model.name}.source`, ...(config.source.locate(['models', model.name, 'source']) ?? {}), message: nothingToServe(versions.directory, versions.list(), versions.settings.policy) })
  }
  return issues
}

/** Why a model has no version to serve at start, and what would give it one (serve and validate say the same). */
export function nothingToServe(directory: ModelDirectory, metas: readonly VersionMeta[], policy: VersionPolicy): string {
  const { dir } = directory
  if (!metas.length) return `no version to serve in ${dir} (add ${dir}/1/model.onnx, or give path: to import one)`
  const allowed = policy.kind === 'specific' ? `, version_policy.specific [${policy.versions.join(', ')}]` : ''
  return `no version to serve in ${dir}: ${metas.map((m) => `${m.version} ${directory.hasModel(m.version) ? m.state : 'no model file'}`).join(', ')}${allowed} (path: is imported only into an empty directory)`
}
