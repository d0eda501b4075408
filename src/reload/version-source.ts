// The gateway's view of src/registry: who picks the file each repository model serves.
import type { GatewayConfig } from '../config/load.ts'
import type { ConfigIssue } from '../config/yaml.ts'
import type { ModelRuntime } from '../model-runtimes.ts'
import { repositorySettings } from '../registry/resolve.ts'

/** What a reload pins a repository model to: one version, or a canary beside the stable one. */
export type VersionPin = number | { readonly stable: number; readonly canary: number }

/**
 * Who picks the version of each repository model (src/registry). The gateway only asks it
 * which file each such model serves, and lets it judge the models a load or reload loaded.
 */
export interface VersionSource {
  /**
   * A model whose versions this source picks: loaded and gated even when no ensemble uses it,
   * since a version serves only once loaded (a file that is not a model must not "serve").
   */
  isRepositoryModel(name: string): boolean
  /**
   * The config with each repository model pointed at the version it serves, or at the
   * version(s) `reload.pin` asks to try. `reload`: the gateway is preparing a reload, swap or
   * trial (not its first load): what the source adds for it is set aside until `committed` or
   * `discarded`, one of which follows.
   */
  resolve(config: GatewayConfig, reload?: { readonly pin?: ReadonlyMap<string, VersionPin> | undefined }): GatewayConfig
  /** The validation gate for models loaded by a load or reload: any issue refuses the config. */
  gate(loaded: readonly ModelRuntime[]): Promise<ConfigIssue[]>
  /**
   * A reload (a config reload, or a swap the source asked for) was swapped in and `config`
   * (as `resolve` answered it) serves now: the source's settings and record follow it. Not
   * called for a reload that was refused (`discarded` is), so a refused reload changes nothing.
   */
  committed?(config: GatewayConfig): void
  /**
   * A reload, swap or trial that `resolve` prepared was not swapped in
   * (refused, or only tried): what the source set aside for it is dropped.
   */
  discarded?(): void
  /**
   * At start, once the first load failed: the repository models named by `issues` (load or
   * gate failures at `models.<name>`) fall back to an earlier version that passed. True if
   * any did: the load is tried again with what `resolve` now answers.
   */
  fallback?(issues: readonly ConfigIssue[]): boolean
}

/**
 * A gateway without a version source (started without `repository:`; the registry starts only
 * with the process) cannot take a reload that adds `source: repository` models: the issues.
 */
export function withoutVersionSource(config: GatewayConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  for (const model of config.models.values()) {
    if (repositorySettings(model) === undefined) continue
    const at = ['models', model.name, 'source']
    issues.push(config.source.issue(at, 'source: repository needs the model repository, which starts with the gateway: this one started without repository:, so restart it with this config'))
  }
  return issues
}
