// A gateway's reloads, registry swaps and trials, one at a time, each reading the config and
// versions when its turn comes: a new state is prepared beside the serving one (its versions
// resolved, its changed models loaded off the hot path, its ensembles built and gated), then
// swapped in at once; refused, or only tried, what it loaded is closed and the version source
// drops what it set aside. A drain that began meanwhile refuses it as NOT_READY.
import type { GatewayConfig } from './config/load.ts'
import { ConfigError, type ConfigIssue } from './config/yaml.ts'
import { GatewayError } from './errors.ts'
import type { GatewayState, StateBuilder } from './gateway-state.ts'
import type { ModelRuntime, ModelRuntimes } from './model-runtimes.ts'
import { lostOutputs, type LostOutputs } from './registry/compatible.ts'
import { describeReload, planModels, type ModelPlan, type ReloadReport } from './reload/plan.ts'
import type { Retirement } from './reload/retire.ts'
import { withoutVersionSource, type VersionPin, type VersionSource } from './reload/version-source.ts'
import { SerialQueue } from './serial-queue.ts'

/** What a reload or swap changed, and the outputs it took from ensembles (its caller warns, or a registry swap let them go). */
export type SwapReport = ReloadReport & { readonly outputsLost: readonly LostOutputs[] }

/** What reloads read and change of their gateway: only a ready one reloads, and a reload swaps in a whole new state. */
export interface ReloadedGateway {
  status(): string
  serving(): GatewayState
  swapIn(next: GatewayState): void
  readonly startedWith: GatewayConfig
  readonly reloads: { applied: number; rejected: number }
  readonly builder: StateBuilder
  readonly runtimes: ModelRuntimes
  readonly versions: VersionSource | undefined
  readonly retirement: Retirement<ModelRuntime>
}

export class GatewayReloads {
  private readonly queue = new SerialQueue()
  private readonly gateway: ReloadedGateway

  constructor(gateway: ReloadedGateway) {
    this.gateway = gateway
  }

  /** See Gateway.reload. */
  reload(config: GatewayConfig): Promise<SwapReport> {
    return this.queue.run(() => this.doReload(config))
  }

  /** See Gateway.swapVersions. */
  swapVersions(pin: ReadonlyMap<string, VersionPin>, swapped: () => void, arriving = false): Promise<SwapReport> {
    return this.queue.run(() => this.doReload(this.gateway.serving().config, pin, swapped, arriving))
  }

  /** See Gateway.trial. */
  trial(pin: ReadonlyMap<string, VersionPin>): Promise<LostOutputs[]> {
    return this.queue.run(async () => {
      const { config, old, next, plan, issues } = await this.prepare(this.gateway.serving().config, pin).catch((err: unknown) => {
        throw this.preparationFailed(err)
      })
      await Promise.allSettled(plan.fresh.map((m) => m.executor.close()))
      this.discarded()
      // A drain that began meanwhile says nothing about the models, as in doReload.
      if (this.gateway.status() !== 'ready') throw this.cannotReload()
      if (issues.length) throw new ConfigError(config.file, issues)
      return lostOutputs(old.ensembles, next.ensembles)
    })
  }

  /** A prepared reload or trial that is not swapped in: the version source drops what it set aside for it. */
  private readonly discarded = (): void => this.gateway.versions?.discarded?.()

  /** After a failed prepare, the version source drops what it set aside. Returns the error to answer: NOT_READY once a drain began, whatever failed. */
  private preparationFailed(err: unknown): unknown {
    this.discarded()
    if (this.gateway.status() === 'ready') return err
    return err instanceof GatewayError && err.code === 'NOT_READY' ? err : this.cannotReload()
  }

  /** A reload or trial refused because the gateway is not ready (loading, draining): says nothing about the config. */
  private readonly cannotReload = (): GatewayError => new GatewayError('NOT_READY', `cannot reload: gateway is ${this.gateway.status()}`)

  private resolved(config: GatewayConfig, pin?: ReadonlyMap<string, VersionPin>): GatewayConfig {
    if (this.gateway.versions) return this.gateway.versions.resolve(config, { pin })
    // No registry picks and gates its versions: its seed would serve ungated, as a version no restart would pass.
    const issues = withoutVersionSource(config)
    if (issues.length) throw new ConfigError(config.file, issues)
    return config
  }

  /**
   * A reload's new state, loaded, built and gated beside the serving one; not swapped in. The
   * versions are resolved once the gateway is known ready: a drain is NOT_READY whatever the config.
   */
  private async prepare(requested: GatewayConfig, pin?: ReadonlyMap<string, VersionPin>, arriving = false): Promise<{ config: GatewayConfig; old: GatewayState; next: GatewayState; plan: ModelPlan<ModelRuntime>; issues: ConfigIssue[] }> {
    if (this.gateway.status() !== 'ready') throw this.cannotReload()
    const config = this.resolved(requested, pin)
    const old = this.gateway.serving()
    const plan = planModels(old.models, config, this.gateway.runtimes.create, this.gateway.runtimes.discard, pin && new Set(pin.keys()))
    const next: GatewayState = { config, models: plan.models, ensembles: new Map(), inFlight: 0, onIdle: undefined }
    const issues = await this.gateway.builder.build(next, old, arriving ? new Set(pin?.keys()) : undefined).catch(async (err: unknown) => {
      await Promise.allSettled(plan.fresh.map((m) => m.executor.close())) // they hold workers or connections
      throw err
    })
    return { config, old, next, plan, issues }
  }

  private async doReload(requested: GatewayConfig, pin?: ReadonlyMap<string, VersionPin>, swapped?: () => void, arriving = false): Promise<SwapReport> {
    const { config, old, next, plan, issues } = await this.prepare(requested, pin, arriving).catch((err: unknown) => {
      const refused = this.preparationFailed(err)
      // Refused by the version source (a version_policy that allows no version that passed) or
      // failed unexpectedly (a system error in the build): a rejected reload too, unless NOT_READY.
      if (this.gateway.status() === 'ready') this.gateway.reloads.rejected++
      throw refused
    })
    if (issues.length || this.gateway.status() !== 'ready') {
      if (this.gateway.status() === 'ready') this.gateway.reloads.rejected++
      await Promise.allSettled(plan.fresh.map((m) => m.executor.close()))
      this.discarded() // after the close: what it removes is no longer open
      // A drain that began meanwhile says nothing about the models: NOT_READY, not their issues.
      throw this.gateway.status() !== 'ready' ? this.cannotReload() : new ConfigError(config.file, issues)
    }
    this.gateway.swapIn(next)
    swapped?.()
    this.gateway.versions?.committed?.(config)
    this.gateway.reloads.applied++
    this.gateway.retirement.retire(old, plan.retired)
    return { ...describeReload(this.gateway.startedWith, old.config, config, old.models, plan), outputsLost: lostOutputs(old.ensembles, next.ensembles) }
  }
}
