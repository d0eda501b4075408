// The registry's side of the gateway's loads and reloads (its VersionSource): each repository
// model's config pointed at the version it serves, what a reload adds set aside until it is
// swapped in (committed) or refused (discarded), the gate's reports written, a start whose
// chosen versions fail falling back to earlier ones; and the record of what serves, kept as a
// start or a reload swapped in leaves it.
import type { GatewayConfig } from '../config/load.ts'
import type { ConfigIssue } from '../config/yaml.ts'
import type { ModelRuntime } from '../model-runtimes.ts'
import type { VersionPin } from '../reload/version-source.ts'
import { silentLogger, type Logger } from '../types.ts'
import type { Judge, RepositoryArrivals } from './arrivals.ts'
import type { CanaryEvidence } from './canary.ts'
import type { RegistryCounts } from './counts.ts'
import { fallBackAtStart } from './fallback.ts'
import type { RepositoryModels } from './model-set.ts'
import type { VersionPipeline } from './pipeline.ts'
import { gateLoaded } from './reload-gate.ts'
import { repositorySettings, resolveVersions } from './resolve.ts'
import type { ModelVersions } from './versions.ts'

/** The registry's operations a load or reload queues, each in turn with the others: a version judged, a canary's end decided. */
export interface QueuedOperations {
  readonly judge: Judge
  readonly decideCanary: (versions: ModelVersions, version: number, evidence: CanaryEvidence) => Promise<void>
}

export class RegistryReloads {
  /** Where the server logs, once the registry is attached. */
  log: Logger = silentLogger
  private readonly set: RepositoryModels
  /** The registry's models. */
  private readonly models: ReadonlyMap<string, ModelVersions>
  private readonly pipeline: VersionPipeline
  private readonly counts: RegistryCounts
  private readonly arrivals: RepositoryArrivals
  private readonly operations: QueuedOperations

  constructor(set: RepositoryModels, pipeline: VersionPipeline, counts: RegistryCounts, arrivals: RepositoryArrivals, operations: QueuedOperations) {
    this.set = set
    this.models = set.current
    this.pipeline = pipeline
    this.counts = counts
    this.arrivals = arrivals
    this.operations = operations
  }

  /**
   * For a reload, a swap or a trial (`reload`), what this adds to the registry is set aside
   * until the gateway commits or discards it. At the first load (and a start's fallback) there
   * is nothing to go back to: it applies at once.
   */
  resolve(config: GatewayConfig, reload?: { readonly pin?: ReadonlyMap<string, VersionPin> | undefined }): GatewayConfig {
    this.discarded() // the gateway reports each outcome; one it did not is dropped, never kept
    if (reload) this.set.stage(reload.pin)
    return resolveVersions(config, reload?.pin, (model) => this.set.track(model), (versions, version, evidence) =>
      // A canary's end writes files: a failure there is logged, never an unhandled rejection.
      void this.operations.decideCanary(versions, version, evidence).catch((err: unknown) => this.log.error({ err, model: versions.name, version }, 'canary decision failed')),
    )
  }

  gate(loaded: readonly ModelRuntime[]): Promise<ConfigIssue[]> {
    // A reload's reports wait for its outcome (staged); a first load's are written at once.
    const staging = this.set.staging
    return gateLoaded(loaded, (name) => this.set.known(name), (versions, version, report) => (staging ? staging.gated(versions, version, report) : versions.update(version, { gate: report })))
  }

  /**
   * A reload (of the config, or one of the registry's swaps) is swapped in: its registry
   * settings apply from now on, and the record follows what it serves. A version_policy that
   * excluded the serving version has another one serving; a canary the config no longer runs
   * (rollout removed, or not allowed) is judged again under the new settings, as a restart would.
   */
  committed(config: GatewayConfig): void {
    const staged = this.set.unstage()
    staged?.commit((err, model) => this.log.error({ err, model }, 'recording a reload\'s gate report failed'))
    const added = [...(staged?.added.values() ?? [])]
    this.set.committed(config, added)
    for (const versions of added) this.opened(versions)
    for (const model of config.models.values()) {
      const versions = this.models.get(model.name)
      const settings = repositorySettings(model)
      if (!versions || !settings) continue
      versions.settings = settings
      try {
        this.pipeline.followReload(versions, model, (canary) =>
          void this.operations.judge(versions, canary).catch((err: unknown) => this.log.error({ err, model: versions.name, version: canary }, 'judging a version again failed')),
        )
      } catch (err) {
        this.log.error({ err, model: model.name }, 'recording what a reload serves failed')
      }
    }
  }

  /** A reload or trial was not swapped in: what it set aside is dropped, and what it wrote for models it added is removed. */
  discarded(): void {
    this.set.unstage()?.discard((err, model) => this.log.error({ err, model }, 'removing what a refused reload added to the repository failed'))
  }

  /**
   * A model a reload added, now swapped in: recorded as start() records each model (its version
   * `serving`), and the versions its directory held that were never judged are judged in turn.
   */
  private opened(versions: ModelVersions): void {
    this.sayGone(versions)
    this.recordServing(versions, 'recording what a reload serves failed') // it serves already (swapped in): the reload still completes
    for (const version of versions.pending()) void this.operations.judge(versions, version).catch(() => undefined)
    // Copied in while the reload ran: the watch's rescan did not see the model yet.
    void this.arrivals.scan(versions).catch((err: unknown) => this.log.error({ err, model: versions.name }, 'repository rescan failed'))
  }

  /** Records the version serving; a failing disk is logged: the version serves all the same. */
  recordServing(versions: ModelVersions, failed: string): void {
    try {
      this.pipeline.recordServing(versions)
    } catch (err) {
      this.log.error({ err, model: versions.name }, failed)
    }
  }

  /** Versions open() rejected, their model file gone (deleted while stopped): said once, and counted as rejections. */
  sayGone(versions: ModelVersions): void {
    for (const version of versions.gone.splice(0)) {
      this.log.error({ model: versions.name, version, serving: versions.serving ?? null }, `model version ${version} rejected at start: its model file is gone`)
      this.counts.count(versions.name, 'rejected')
    }
  }

  fallback(issues: readonly ConfigIssue[]): boolean {
    return fallBackAtStart(this.models, issues, this.log, (model) => this.counts.count(model, 'rejected'))
  }
}
