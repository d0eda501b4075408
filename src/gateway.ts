// The composition root: config → executors → ensembles → starter. Frontends (REST, gRPC,
// Kafka) hold a Gateway and translate wire formats; they hold no strategy logic.
import { atMost } from './at-most.ts'
import { randomUUID } from 'node:crypto'
import type { GatewayConfig } from './config/load.ts'
import { ConfigError } from './config/yaml.ts'
import { GatewayError } from './errors.ts'
import { GatewayClose } from './gateway-close.ts'
import { GatewayReloads, type SwapReport } from './gateway-reload.ts'
import type { SharedResource } from './executors/types.ts'
import { StateBuilder, type GatewayState } from './gateway-state.ts'
import { ModelRuntimes, type ModelRuntime } from './model-runtimes.ts'
import { ReadinessHolds } from './readiness.ts'
import type { LostOutputs } from './registry/compatible.ts'
import { planModels } from './reload/plan.ts'
import { Retirement } from './reload/retire.ts'
import type { VersionPin, VersionSource } from './reload/version-source.ts'
import { Admission } from './starter/admission.ts'
import { effectiveBudget } from './starter/budget.ts'
import { checkInputs, type EnsembleRuntime } from './starter/ensemble.ts'
import type { RunHooks } from './starter/run-hooks.ts'
import { Run } from './starter/run.ts'
import { quote } from './tensor/index.ts'
import type { Component, PredictRequest, PredictResult } from './types.ts'

export class Gateway {
  readonly hooks: RunHooks = {}
  /** Counts of config reloads, for metrics. */
  readonly reloads = { applied: 0, rejected: 0 }
  /** The one in-flight count and limit (`server.max_in_flight` of the config being served). */
  readonly admission = new Admission(() => this.current.config.server.max_in_flight)
  /** Attached parts by dotted path (`output.kafka`): /readyz detail and metrics; never affect readiness. */
  readonly components = new Map<string, Component>()
  /** What readiness waits for once loaded (the model stream catching up): predicts are taken meanwhile. */
  readonly holds = new ReadinessHolds()
  private loading: Promise<void> | undefined
  /** Settles once the first load has ended (ready, failed) or the gateway closed: see loadEnded(). */
  private endLoad!: () => void
  private readonly loadEnd = new Promise<void>((resolve) => (this.endLoad = resolve))
  private state: 'loading' | 'ready' | 'failed' | 'draining' | 'closed' = 'loading'
  private current: GatewayState
  /** The config the listeners, pools, telemetry and output were built from (a reload never changes it): what restartNeeded compares with. */
  readonly startedWith: GatewayConfig
  /** Loads, builds and gates each config's state, remembering which executors it already loaded and gated. */
  private readonly builder: StateBuilder
  /** Executors of replaced configs, closed once no config still running predicts holds them. */
  private readonly retirement = new Retirement<ModelRuntime>()
  /** One reload, swap or trial at a time, each reading the config and versions when it runs. */
  private readonly reloading: GatewayReloads
  /** Makes each model's runtime; owns what their executors share. */
  private readonly runtimes: ModelRuntimes
  private readonly versions: VersionSource | undefined
  private closing: GatewayClose | undefined

  constructor(config: GatewayConfig, options: { readonly versions?: VersionSource } = {}) {
    this.versions = options.versions
    this.builder = new StateBuilder(this.versions)
    if (this.versions) config = this.versions.resolve(config)
    this.runtimes = new ModelRuntimes(config)
    const { models } = planModels(new Map<string, ModelRuntime>(), config, this.runtimes.create, this.runtimes.discard)
    this.current = { config, models, ensembles: new Map(), inFlight: 0, onIdle: undefined }
    this.startedWith = config
    this.reloading = new GatewayReloads({ status: () => this.state, serving: () => this.current, swapIn: (next) => (this.current = next), startedWith: config, reloads: this.reloads, builder: this.builder, runtimes: this.runtimes, versions: this.versions, retirement: this.retirement })
  }

  /** The config being served (after a reload, the new one). */
  get config(): GatewayConfig {
    return this.current.config
  }

  get models(): ReadonlyMap<string, ModelRuntime> {
    return this.current.models
  }

  get ensembles(): ReadonlyMap<string, EnsembleRuntime> {
    return this.current.ensembles
  }

  /** What executor kinds share between their models (the ONNX worker pool), by key. */
  get resources(): ReadonlyMap<string, SharedResource> {
    return this.runtimes.resources
  }

  get ready(): boolean {
    return this.state === 'ready'
  }

  /** Ready, and nothing holds readiness: what /readyz and the health services say, for load balancers. */
  get readyForTraffic(): boolean {
    return this.ready && !this.holds.holding
  }

  get status(): string {
    return this.state
  }

  /** Resolves once the first load has ended, whatever its outcome (or the gateway closed); never starts it. */
  loadEnded(): Promise<void> {
    return this.loadEnd
  }

  /** Attaches a part (an output sink, stream mode) under a dotted path of /readyz. */
  attach(path: string, component: Component): void {
    this.components.set(path, component)
  }

  /** Loads and warms every model, then builds the ensembles. Idempotent. Rejects with ConfigError. */
  load(): Promise<void> {
    this.loading ??= this.doLoad()
      .catch((err: unknown) => {
        this.state = 'failed'
        throw err
      })
      .finally(this.endLoad)
    return this.loading
  }

  private async doLoad(): Promise<void> {
    let issues = await this.builder.build(this.current)
    // A repository model whose chosen version fails at start falls back to an earlier one that passed.
    while (issues.length && this.versions?.fallback?.(issues)) {
      const config = this.versions.resolve(this.current.config)
      const plan = planModels(this.current.models, config, this.runtimes.create, this.runtimes.discard)
      await Promise.allSettled(plan.retired.map((m) => m.executor.close()))
      this.current = { config, models: plan.models, ensembles: new Map(), inFlight: 0, onIdle: undefined }
      issues = await this.builder.build(this.current)
    }
    if (issues.length) throw new ConfigError(this.config.file, issues)
    if (this.state === 'loading') this.state = 'ready' // a drain during the load stays a drain
  }

  /**
   * Hot reload: validates and loads `config` off the hot path (unchanged models are kept
   * as they are), then swaps it in at once. Predicts already running finish on the old
   * config. Rejects with ConfigError, and the old config keeps serving, if anything fails.
   * Repository models serve the versions the registry records when the reload's turn comes.
   */
  reload(config: GatewayConfig): Promise<SwapReport> {
    return this.reloading.reload(config)
  }

  /**
   * A registry swap: a reload of the config serving when its turn comes (not when it was
   * asked for: a config reload queued before it is kept), with repository models pinned to
   * `pin`. `swapped` runs in the same step as the swap, so the registry's record of what
   * serves is current before any later reload resolves versions from it. `arriving`: the
   * pinned versions came through the registry and must keep their ensembles' outputs (StateBuilder.build).
   */
  swapVersions(pin: ReadonlyMap<string, VersionPin>, swapped: () => void, arriving = false): Promise<SwapReport> {
    return this.reloading.swapVersions(pin, swapped, arriving)
  }

  /**
   * What a swap to `pin` would find, without swapping anything in: the changed models are
   * loaded off the hot path, checked and gated, then closed. Rejects with ConfigError like
   * reload. The registry judges a version it will not serve now this way. Resolves with the
   * outputs such a swap would take from ensembles.
   */
  trial(pin: ReadonlyMap<string, VersionPin>): Promise<LostOutputs[]> {
    return this.reloading.trial(pin)
  }

  ensemble(name: string): EnsembleRuntime {
    const ens = this.ensembles.get(name)
    if (ens) return ens
    if (this.state !== 'ready') throw new GatewayError('NOT_READY', `gateway is ${this.state}`)
    throw new GatewayError('UNKNOWN_ENSEMBLE', `no ensemble named ${quote(name)}`)
  }

  model(name: string): ModelRuntime {
    const m = this.models.get(name)
    if (!m) throw new GatewayError('UNKNOWN_ENSEMBLE', `no model named ${quote(name)}`)
    return m
  }

  /**
   * Starts one predict and returns its run (`result`, `cancel()`). Request errors (unknown
   * ensemble, bad input or budget, overload) throw GatewayError; a predict that ran but
   * failed resolves with `result.error` set. `admitted`: the caller already holds an
   * admission slot for it (REST takes one before reading the body) and releases it itself.
   */
  start(req: PredictRequest, admitted = false): Run {
    const state = this.current
    const ens = this.ensemble(req.ensemble)
    checkInputs(ens, req.inputs)
    const budget = effectiveBudget(req, ens.config.budget)
    if (this.state !== 'ready') throw new GatewayError('NOT_READY', `gateway is ${this.state}`)
    if (!admitted && !this.admission.tryEnter()) {
      ens.requestStats.count('OVERLOADED') // shed before it ran: visible in the request metrics
      throw this.admission.overloaded()
    }
    state.inFlight++
    const run = new Run(ens, req, budget, this.hooks, state, admitted ? null : this.admission)
    run.start()
    return run
  }

  /** Runs one predict to its result (see start); `req.signal` cancels it. */
  predict(req: PredictRequest): Promise<PredictResult> {
    return this.start(req).result
  }

  /** Stop taking predicts; readiness goes false so load balancers move away. */
  drain(): void {
    if (this.state !== 'closed') this.state = 'draining'
  }

  /**
   * Resolves once no predict is running, shadows included (their serving record waits for
   * them), of the serving config or of one a reload replaced, or after `graceMs`: shutdown
   * waits for it before it closes the output, so those records are not dropped.
   */
  idle(graceMs: number): Promise<void> {
    const state = this.current
    const serving = state.inFlight === 0 ? undefined : new Promise<void>((resolve) => {
      const before = state.onIdle
      state.onIdle = () => {
        before?.()
        resolve()
      }
    })
    return atMost(Promise.all([serving, this.retirement.idle()]), graceMs)
  }

  /**
   * Takes no predict from now on and closes the models, then the ONNX worker pool. Resolves
   * once all is closed, which waits for any inference a worker thread is inside (it cannot be
   * cut: gateway-close.ts). `graceMs` bounds that wait (default: none, Infinity): past it,
   * rejects with CloseTimeoutError while the close goes on. Calls share one close.
   */
  close(graceMs = Infinity): Promise<void> {
    this.closing ??= new GatewayClose(async (track) => {
      this.state = 'closed'
      this.endLoad()
      // Loads still queued (a stop during the first load) are refused rather than waited for.
      this.runtimes.beginClose()
      await Promise.allSettled([...this.models.values(), ...this.retirement.takeAll()].map((m) => track(`model ${m.model.name}`, m.executor.close())))
      await track('the inference workers', this.runtimes.close())
    }, this.runtimes.inRun)
    return this.closing.within(graceMs)
  }
}

export const newRequestId = (): string => randomUUID()
