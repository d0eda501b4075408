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
import type { PredictRequest, PredictResult } from './types.ts'

export interface ModelRuntime {
  readonly model: ModelConfig
  readonly executor: Executor
  readonly stats: ModelStats
}

export class Gateway {
  readonly config: GatewayConfig
  readonly models = new Map<string, ModelRuntime>()
  readonly ensembles = new Map<string, EnsembleRuntime>()
  readonly hooks: RunHooks = {}
  /** Extra /readyz detail from attached components (e.g. output sinks); never affects readiness. */
  readonly statusDetails = new Map<string, () => unknown>()
  private pool: OnnxPool | undefined
  private loading: Promise<void> | undefined
  private inFlight = 0
  private state: 'loading' | 'ready' | 'failed' | 'draining' | 'closed' = 'loading'

  constructor(config: GatewayConfig) {
    this.config = config
    const env: ExecutorEnv = {
      baseDir: config.baseDir,
      onnxPool: () => (this.pool ??= new OnnxPool({ workers: config.executors.onnx_workers, queueLimit: config.executors.onnx_queue })),
    }
    for (const model of config.models.values()) {
      const kind = getExecutorKind(model.kind)
      if (!kind) throw new Error(`unknown executor kind ${model.kind}`) // parseConfig already rejected it
      this.models.set(model.name, { model, executor: kind.create(model.name, model.spec, env), stats: new ModelStats() })
    }
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
    const issues: ConfigIssue[] = []
    const at = (path: string, message: string): void => {
      issues.push({ path, ...(this.config.source.locate(path.split('.')) ?? {}), message })
    }
    const used = new Set([...this.config.ensembles.values()].flatMap((e) => e.models))
    await Promise.all(
      [...this.models.values()]
        .filter((m) => used.has(m.model.name))
        .map((m) => m.executor.load().catch((err: unknown) => at(`models.${m.model.name}`, `failed to load: ${(err as Error).message}`))),
    )
    if (issues.length) throw new ConfigError(this.config.file, issues)
    for (const config of this.config.ensembles.values()) {
      const built = buildEnsemble(config, (name) => this.models.get(name)!)
      for (const issue of built.issues) at(issue.path, issue.message)
      if (built.ensemble) this.ensembles.set(config.name, built.ensemble)
    }
    if (issues.length) throw new ConfigError(this.config.file, issues)
    this.state = 'ready'
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
    const ens = this.ensemble(req.ensemble)
    checkInputs(req, ens)
    const budget = effectiveBudget(req, ens.config.budget)
    if (this.state !== 'ready') throw new GatewayError('NOT_READY', `gateway is ${this.state}`)
    if (this.inFlight >= this.config.server.max_in_flight) {
      throw new GatewayError('OVERLOADED', `${this.inFlight} requests in flight (max_in_flight ${this.config.server.max_in_flight})`)
    }
    this.inFlight++
    return new Promise<PredictResult>((resolve) => {
      new Run(ens, req, budget, this.hooks, (result) => {
        this.inFlight--
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
    await Promise.allSettled([...this.models.values()].map((m) => m.executor.close()))
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
