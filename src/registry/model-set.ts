// Which record (ModelVersions) each repository model has: one per directory for the life of
// the process. The registry's own are listed, open to uploads and judged; those a reload being
// prepared opens are staged until it is swapped in; those a reload dropped are kept, and taken
// back when a reload adds the model again: an operation queued before still holds the record,
// and its versions being stored keep their numbers.
import { readFileSync } from 'node:fs'
import type { GatewayConfig, ModelConfig } from '../config/load.ts'
import type { VersionPin } from '../reload/version-source.ts'
import { fromRepository, repositorySettings } from './resolve.ts'
import { ReloadStaging } from './staging.ts'
import { ModelVersions } from './versions.ts'

export class RepositoryModels {
  /** The registry's. */
  readonly current = new Map<string, ModelVersions>()
  private readonly dropped = new Map<string, ModelVersions>()
  /** What the reload being prepared set aside (after the first load): kept once it is swapped in, dropped if not. */
  staging: ReloadStaging | undefined
  private readonly path: string

  constructor(repositoryPath: string) {
    this.path = repositoryPath
  }

  /**
   * The versions of a repository model, opened on first sight (at start, or added by a reload).
   * A model already open keeps its settings: a reload's apply once it is swapped in (committed).
   */
  track(model: ModelConfig): ModelVersions | undefined {
    const settings = repositorySettings(model)
    if (!settings) return undefined
    const known = this.known(model.name)
    if (known) return known
    const dropped = this.dropped.get(model.name)
    const versions = dropped ?? new ModelVersions(this.path, model.name, settings)
    versions.settings = settings
    // Added by a reload: the registry's only once it is swapped in.
    if (this.staging) this.staging.added.set(model.name, versions)
    else this.adopt(versions)
    const seed = (): Buffer | undefined => (settings.seed ? readFileSync(settings.seed) : undefined)
    if (dropped) dropped.reopen(seed)
    else versions.open(seed)
    return versions
  }

  /** A repository model's versions: the registry's, or opened by the reload being prepared. */
  known(name: string): ModelVersions | undefined {
    return this.current.get(name) ?? this.staging?.added.get(name)
  }

  /** A reload, swap or trial is being prepared (`pin`: the versions a swap or trial pins): what it opens is staged. */
  stage(pin: ReadonlyMap<string, VersionPin> | undefined): void {
    this.staging = new ReloadStaging(pin)
  }

  /** Ends the staging: the reload being prepared was swapped in or refused. */
  unstage(): ReloadStaging | undefined {
    const staged = this.staging
    this.staging = undefined
    return staged
  }

  /**
   * A reload is swapped in: the models it added (`added`) are the registry's, and a model the
   * config no longer serves from the repository is the registry's no more (no upload or record
   * for it is stored or "served").
   */
  committed(config: GatewayConfig, added: Iterable<ModelVersions>): void {
    for (const versions of added) this.adopt(versions)
    for (const [name, versions] of this.current) {
      if (fromRepository(config, name)) continue
      this.current.delete(name)
      this.dropped.set(name, versions)
    }
  }

  /** Resolves once no reload being prepared adds the model: at once, or when the one that does is swapped in or refused. */
  async addedSettled(name: string): Promise<void> {
    // Again while one does: a reload refused meanwhile may have been followed by another adding it.
    while (this.staging?.added.has(name)) await this.staging.settled
  }

  private adopt(versions: ModelVersions): void {
    this.current.set(versions.name, versions)
    this.dropped.delete(versions.name)
  }
}
