// What `specserve validate` says about the repository, without writing anything: which version
// of each repository model would serve, or that the seed `path:` would be imported, or that
// nothing could serve (a config error at the entry's line). Opening the registry would create
// model directories and import seeds; this only reads version directories and meta.json. It is
// the validating gateway's version source, so that gateway loads and gates as serve's first
// load does, and falls back from a version that fails as serve's start does (fallback.ts): the
// version it names is the one serve would serve.
import { existsSync } from 'node:fs'
import type { GatewayConfig, ModelConfig } from '../config/load.ts'
import type { ConfigIssue } from '../config/yaml.ts'
import type { OnnxSpec } from '../executors/onnx/config.ts'
import type { ModelRuntime } from '../model-runtimes.ts'
import type { VersionSource } from '../reload/version-source.ts'
import { repositorySettings } from './resolve.ts'
import type { VersionPolicy } from './config.ts'
import { fallBack, type FallingBack } from './fallback.ts'
import { gateLoaded } from './reload-gate.ts'
import { ModelDirectory } from './store.ts'
import type { VersionMeta } from './version-meta.ts'
import { allowedBy, fallbackChoice, goneAtStart, newMeta, servingChoice } from './version-rules.ts'
import type { ModelVersions } from './versions.ts'

/** One repository model as a start would find it; read-only, so its fallback writes nothing. */
class Previewed implements FallingBack {
  readonly directory: ModelDirectory
  readonly metas: readonly VersionMeta[]
  /** Version directories with no meta.json (copied in while stopped): a start records their sha256 from the file, so it cannot differ. */
  private readonly unrecorded: ReadonlySet<number>
  private readonly allowed: (version: number) => boolean
  /** The version that would serve; undefined: the seed, imported as version 1. */
  serving: number | undefined
  private readonly seed: string | undefined

  constructor(directory: ModelDirectory, metas: readonly VersionMeta[], unrecorded: ReadonlySet<number>, allowed: (version: number) => boolean, serving: number | undefined, seed: string | undefined) {
    this.directory = directory
    this.metas = metas
    this.unrecorded = unrecorded
    this.allowed = allowed
    this.serving = serving
    this.seed = seed
  }

  /** The file that would serve. */
  get path(): string {
    return this.serving === undefined ? this.seed! : this.directory.modelFile(this.serving)
  }

  fallbackFrom(failed: number): number | undefined {
    return fallbackChoice(this.metas, failed, this.allowed, (v) => this.directory.hasModel(v))
  }

  failAtStart(version: number): string | null {
    return this.directory.damage(version, this.unrecorded.has(version) ? undefined : this.metas.find((meta) => meta.version === version)?.sha256)
  }
}

export class RepositoryPreview implements VersionSource {
  /** Models with nothing to serve. */
  readonly issues: ConfigIssue[] = []
  /** Versions a start would fall back from, with why and what becomes of them, located like issues. */
  readonly warnings: ConfigIssue[] = []
  private readonly config: GatewayConfig
  private readonly models = new Map<string, Previewed>()
  private readonly missing: boolean

  constructor(config: GatewayConfig) {
    this.config = config
    const repository = config.repository
    this.missing = repository !== undefined && !existsSync(repository.path)
    if (!repository) return
    for (const model of config.models.values()) {
      const settings = repositorySettings(model)
      if (!settings) continue
      const directory = new ModelDirectory(repository.path, model.name)
      const allowed = (v: number): boolean => allowedBy(settings.policy, v)
      const unrecorded = new Set<number>()
      // A version directory holding a model but no meta.json yet is an arrival, judged as never judged.
      const metas = directory.versions().flatMap((v): VersionMeta[] => {
        const meta = directory.readMeta(v)
        if (meta) return [meta]
        if (!directory.hasModel(v)) return []
        unrecorded.add(v)
        return [newMeta(v, new Uint8Array(), 'directory', null)]
      })
      const hasModel = (v: number): boolean => directory.hasModel(v)
      for (const gone of goneAtStart(metas, allowed, hasModel)) this.warnings.push(this.located(model.name, `version ${gone}'s model file is gone: serve would reject it at start`))
      const version = servingChoice(metas, allowed, hasModel)
      if (version === undefined && !(settings.seed && directory.versions().length === 0)) {
        this.issues.push(this.located(model.name, nothingToServe(directory, metas, settings.policy)))
        continue
      }
      this.models.set(model.name, new Previewed(directory, metas, unrecorded, allowed, version, settings.seed))
    }
    if (this.missing && this.issues.length) this.issues.unshift(config.source.issue('repository.path', `repository directory ${repository.path} does not exist`))
  }

  /** What serve would do, one line per repository model: the version that serves (after any fallback so far), or the seed's import. */
  notes(): ConfigIssue[] {
    return [...this.models].map(([name, m]) =>
      this.located(name, m.serving !== undefined ? `version ${m.serving} would serve (${m.path})` : `no version in ${m.directory.dir} yet: serve would import path: ${m.path} as version 1${this.missing ? ` (and create the repository ${this.config.repository!.path})` : ''}`),
    )
  }

  isRepositoryModel(name: string): boolean {
    return this.models.has(name)
  }

  /** The config with each repository model pointed at the file that would serve (a version, or its seed). */
  resolve(config: GatewayConfig): GatewayConfig {
    const models = new Map(config.models)
    for (const [name, m] of this.models) {
      const model = config.models.get(name)
      if (model) models.set(name, { ...model, version: String(m.serving ?? 1), spec: { ...(model.spec as OnnxSpec), path: m.path } })
    }
    return Object.freeze({ ...config, models })
  }

  /** The gate serve runs as it loads, its reports kept nowhere. */
  gate(loaded: readonly ModelRuntime[]): Promise<ConfigIssue[]> {
    return gateLoaded(loaded, (name) => this.models.get(name), () => undefined)
  }

  /** As serve's start falls back (fallBackAtStart), read-only: the version that failed is named in a warning. */
  fallback(issues: readonly ConfigIssue[]): boolean {
    return fallBack(this.models, issues, ({ model, failed, reason, target, damage }) => {
      const rejected = damage !== null ? `, and version ${failed} would be rejected (${damage})` : ''
      if (target === undefined) this.warnings.push(this.located(model, `version ${failed} would fail at start (${reason}) and no earlier version passed: the start would fail${rejected}`))
      else this.warnings.push(this.located(model, `version ${failed} would fail at start (${reason}): serve would fall back to version ${target}, which passed before${rejected || `, and version ${failed} tried again at the next start`}`))
    })
  }

  private located(model: string, message: string): ConfigIssue {
    const path = `models.${model}.source`
    return this.config.source.issue(path, message)
  }
}

/** The repository models with no version to serve at start (`open`: a model's versions, opened), as issues at their entries. */
export function unservable(config: GatewayConfig, open: (model: ModelConfig) => ModelVersions | undefined): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  for (const model of config.models.values()) {
    const versions = open(model)
    if (!versions || versions.serving !== undefined) continue
    issues.push(config.source.issue(['models', model.name, 'source'], nothingToServe(versions.directory, versions.list(), versions.settings.policy)))
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
