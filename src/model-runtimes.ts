// What the gateway makes for each configured model: its executor (a canary pair when the
// registry rolls one out), its stats and its fingerprint, from the executor kind it names.
// Executors of one kind share resources (the ONNX worker pool) through the env here, sized
// once from the first config: a reload cannot resize them.
import type { GatewayConfig, ModelConfig } from './config/load.ts'
import { getExecutorKind } from './executors/registry.ts'
import type { Executor, ExecutorEnv, SharedResource } from './executors/types.ts'
import { CanaryExecutor } from './registry/canary.ts'
import { ModelStats } from './starter/stats.ts'

export interface ModelRuntime {
  readonly model: ModelConfig
  readonly executor: Executor
  readonly stats: ModelStats
  /** Identity of the entry and its files: an unchanged model survives a reload as is. */
  readonly fingerprint: string
}

export class ModelRuntimes {
  /** What executor kinds share between their models (the ONNX worker pool), by key. */
  readonly resources = new Map<string, SharedResource>()
  private readonly env: ExecutorEnv
  private stopping = false

  constructor(first: GatewayConfig) {
    this.env = {
      executors: first.executors,
      shared: <R extends SharedResource>(key: string, create: () => R): R => {
        let resource = this.resources.get(key) as R | undefined
        if (!resource) {
          this.resources.set(key, (resource = create()))
          // Made by a load still going as the gateway stops: it refuses work from the start.
          if (this.stopping) resource.beginClose?.()
        }
        return resource
      },
    }
  }

  readonly create = (model: ModelConfig, fingerprint: string): ModelRuntime => {
    const kind = getExecutorKind(model.kind)
    if (!kind) throw new Error(`unknown executor kind ${model.kind}`) // parseConfig already rejected it
    const stable = kind.create(model.name, model.spec as never, this.env)
    // A canary rollout: the registry's second version beside the serving one.
    const executor = model.canary ? new CanaryExecutor(stable, kind.create(model.name, model.canary.spec as never, this.env), model.canary) : stable
    return { model, executor, stats: new ModelStats(), fingerprint }
  }

  /** Runtimes made for a config that never came to be (a later model's create threw): closed. */
  readonly discard = (created: readonly ModelRuntime[]): void => {
    void Promise.allSettled(created.map((m) => m.executor.close()))
  }

  /** The gateway is stopping: each shared resource refuses work not begun yet (before the executors close). */
  beginClose(): void {
    this.stopping = true
    for (const resource of this.resources.values()) resource.beginClose?.()
  }

  /** Is a worker thread of a shared resource inside a run (or set aside as stuck in one)? */
  readonly inRun = (): boolean => {
    for (const resource of this.resources.values()) if (resource.inRun?.()) return true
    return false
  }

  /** Closes the shared resources, once every executor using them is closed. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.resources.values()].map((r) => r.close()))
  }
}
