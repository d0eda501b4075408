// The composition root: config → executors → ensembles → starter. Frontends (REST,
// gRPC, stream) hold a Gateway and translate wire formats; they hold no strategy logic.
import { randomUUID } from 'node:crypto'
import type { GatewayConfig, ModelConfig } from './config/load.ts'
import { ConfigError, type ConfigIssue } from './config/yaml.ts'
import { GatewayError } from './errors.ts'
import { OnnxPool } from './executors/onnx/pool.ts'
import { getExecutorKind } from './executors/registry.ts'
import type { Executor, ExecutorEnv } from './executors/types.ts'
import { effectiveBudget } from './starter/budget.ts'
import { buildEnsemble, type EnsembleRuntime } from './starter/ensemble.ts'
import { Run, type RunHooks } from './starter/run.ts'
import { ModelStats } from './starter/stats.ts'
import { checkShape } from './tensor.ts'
import { describeReload, planModels, type ReloadReport } from './reload/plan.ts'
import type { PredictRequest, PredictResult } from './types.ts'

export interface ModelRuntime {
  readonly model: ModelConfig
  readonly executor: Executor
  readonly stats: ModelStats
  /** Identity of the entry and its file: an unchanged model survives a reload as is. */
  readonly fingerprint: string
}

/** One config's models and ensembles. A reload builds a new one and swaps it in whole. */
interface GatewayState {
  readonly config: GatewayConfig
  readonly models: Map<string, ModelRuntime>
  readonly ensembles: Map<string, EnsembleRuntime>
  /** Predicts started on this state and not finished. */
  inFlight: number
  /** Set once superseded: called when its last predict finishes. */
  onIdle: (() => void) | undefined
}

export class Gateway {
  readonly hooks: RunHooks = {}
  /** Counts of config reloads, for metrics. */
  readonly reloads = { applied: 0, rejected: 0 }
  /** Extra /readyz detail from attached components (e.g. output sinks); never affects readiness. */
  readonly statusDetails = new Map<string, () => unknown>()
  private pool: OnnxPool | undefined
  private loading: Promise<void> | undefined
  private inFlight = 0
  private state: 'loading' | 'ready' | 'failed' | 'draining' | 'closed' = 'loading'
  private current: GatewayState
  private readonly loaded = new WeakSet<Executor>()
  /** Executors of a replaced config, closed once its last predict is done. */
  private readonly retiring = new Set<ModelRuntime>()
  private reloading: Promise<unknown> = Promise.resolve()
  private readonly initial: GatewayConfig

  constructor(config: GatewayConfig) {
    // The worker pool is sized once, from the first config: a reload cannot resize it.
    this.initial = config
    const { models } = planModels(new Map<string, ModelRuntime>(), config, (model, fingerprint) => this.createRuntime(config, model, fingerprint))
    this.current = { config, models, ensembles: new Map(), inFlight: 0, onIdle: undefined }
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

  private createRuntime(config: GatewayConfig, model: ModelConfig, fingerprint: string): ModelRuntime {
    const kind = getExecutorKind(model.kind)
    if (!kind) throw new Error(`unknown executor kind ${model.kind}`) // parseConfig already rejected it
    const { onnx_workers: workers, onnx_queue: queueLimit } = this.initial.executors
    const env: ExecutorEnv = { baseDir: config.baseDir, onnxPool: () => (this.pool ??= new OnnxPool({ workers, queueLimit })) }
    return { model, executor: kind.create(model.name, model.spec, env), stats: new ModelStats(), fingerprint }
  }

  get ready(): boolean {
    return this.state === 'ready'
  }

  get status(): string {
    return this.state
  }

  /** Loads and warms every model, then builds the ensembles. Idempotent. Rejects with ConfigError. */
  load(): Promise<void> {
    this.loading ??= this.doLoad().catch((err: unknown) => {
      this.state = 'failed'
      throw err
    })
    return this.loading
  }

  private async doLoad(): Promise<void> {
    const issues = await this.build(this.current)
    if (issues.length) throw new ConfigError(this.config.file, issues)
    this.state = 'ready'
  }

  /** Loads the state's used models not loaded yet, then builds its ensembles. Returns every issue. */
  private async build(state: GatewayState, previous?: GatewayState): Promise<ConfigIssue[]> {
    const { config } = state
    const issues: ConfigIssue[] = []
    const at = (path: string, message: string): void => {
      issues.push({ path, ...(config.source.locate(path.split('.')) ?? {}), message })
    }
    const used = new Set([...config.ensembles.values()].flatMap((e) => e.models))
    await Promise.all(
      [...state.models.values()]
        .filter((m) => used.has(m.model.name) && !this.loaded.has(m.executor))
        .map((m) =>
          m.executor.load().then(
            () => this.loaded.add(m.executor),
            (err: unknown) => at(`models.${m.model.name}`, `failed to load: ${(err as Error).message}`),
          ),
        ),
    )
    if (issues.length) return issues
    for (const ens of config.ensembles.values()) {
      // Request counters follow the ensemble's name across reloads.
      const built = buildEnsemble(ens, (name) => state.models.get(name)!, previous?.ensembles.get(ens.name)?.requestStats)
      for (const issue of built.issues) at(issue.path, issue.message)
      if (built.ensemble) state.ensembles.set(ens.name, built.ensemble)
    }
    return issues
  }

  /**
   * Hot reload: validates and loads `config` off the hot path (unchanged models are kept
   * as they are), then swaps it in at once. Predicts already running finish on the old
   * config. Rejects with ConfigError, and the old config keeps serving, if anything fails.
   */
  reload(config: GatewayConfig): Promise<ReloadReport> {
    const run = this.reloading.then(() => this.doReload(config))
    this.reloading = run.catch(() => undefined) // one reload at a time
    return run
  }

  private async doReload(config: GatewayConfig): Promise<ReloadReport> {
    if (this.state !== 'ready') throw new GatewayError('NOT_READY', `cannot reload: gateway is ${this.state}`)
    const old = this.current
    const plan = planModels(old.models, config, (model, fingerprint) => this.createRuntime(config, model, fingerprint))
    const next: GatewayState = { config, models: plan.models, ensembles: new Map(), inFlight: 0, onIdle: undefined }
    const issues = await this.build(next, old)
    if (issues.length || this.state !== 'ready') {
      this.reloads.rejected++
      await Promise.allSettled(plan.fresh.map((m) => m.executor.close()))
      throw issues.length ? new ConfigError(config.file, issues) : new GatewayError('NOT_READY', `cannot reload: gateway is ${this.state}`)
    }
    this.current = next
    this.reloads.applied++
    for (const m of plan.retired) this.retiring.add(m)
    const retire = (): void => {
      for (const m of plan.retired) {
        this.retiring.delete(m)
        void m.executor.close().catch(() => undefined)
      }
    }
    if (old.inFlight === 0) retire()
    else old.onIdle = retire
    return describeReload(old.config, config, old.models, plan)
  }

  ensemble(name: string): EnsembleRuntime {
    const ens = this.ensembles.get(name)
    if (ens) return ens
    if (this.state !== 'ready') throw new GatewayError('NOT_READY', `gateway is ${this.state}`)
    throw new GatewayError('UNKNOWN_ENSEMBLE', `no ensemble named "${name}"`)
  }

  model(name: string): ModelRuntime {
    const m = this.models.get(name)
    if (!m) throw new GatewayError('UNKNOWN_ENSEMBLE', `no model named "${name}"`)
    return m
  }

  /**
   * Runs one predict. Request errors (unknown ensemble, bad input or budget, overload)
   * throw GatewayError; a predict that ran but failed resolves with `result.error` set.
   */
  predict(req: PredictRequest): Promise<PredictResult> {
    const state = this.current
    const ens = this.ensemble(req.ensemble)
    checkInputs(req, ens)
    const budget = effectiveBudget(req, ens.config.budget)
    if (this.state !== 'ready') throw new GatewayError('NOT_READY', `gateway is ${this.state}`)
    if (this.inFlight >= this.config.server.max_in_flight) {
      ens.requestStats.count('OVERLOADED') // shed before it ran: visible in the request metrics
      throw new GatewayError('OVERLOADED', `${this.inFlight} requests in flight (max_in_flight ${this.config.server.max_in_flight})`)
    }
    this.inFlight++
    state.inFlight++
    return new Promise<PredictResult>((resolve) => {
      new Run(ens, req, budget, this.hooks, (result) => {
        this.inFlight--
        if (--state.inFlight === 0) state.onIdle?.()
        resolve(result)
      }).start()
    })
  }

  get requestsInFlight(): number {
    return this.inFlight
  }

  poolStats(): ReturnType<OnnxPool['stats']> | null {
    return this.pool?.stats() ?? null
  }

  /** Stop taking predicts; readiness goes false so load balancers move away. */
  drain(): void {
    if (this.state !== 'closed') this.state = 'draining'
  }

  async close(): Promise<void> {
    this.state = 'closed'
    await Promise.allSettled([...this.models.values(), ...this.retiring].map((m) => m.executor.close()))
    await this.pool?.close()
  }
}

export const newRequestId = (): string => randomUUID()

function checkInputs(req: PredictRequest, ens: EnsembleRuntime): void {
  let given = 0
  for (const spec of ens.inputs) {
    const tensor = req.inputs[spec.name]
    if (!tensor) throw new GatewayError('BAD_INPUT', `missing input "${spec.name}" (${spec.datatype} [${spec.shape.join(', ')}])`)
    checkShape(tensor, spec)
    given++
  }
  let count = 0
  for (const _ in req.inputs) count++
  if (count !== given) {
    const unknown = Object.keys(req.inputs).filter((k) => !ens.inputs.some((s) => s.name === k))
    throw new GatewayError('BAD_INPUT', `unknown input "${unknown[0]}" (this ensemble takes: ${ens.inputs.map((s) => s.name).join(', ')})`)
  }
}
