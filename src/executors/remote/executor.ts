// The executor every remote kind shares. A kind supplies a ProtocolAdapter (how to encode a
// call and decode the answer over REST or gRPC); this class adds what makes remote calls
// safe inside a latency budget: the remaining budget on every call, abort on decision,
// a per-upstream circuit breaker, budget-aware retries under a retry budget, optional
// hedging, and the mapping of the answer onto the declared outputs.
import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { ModelMetadata, TensorMap, TensorSpec } from '../../types.ts'
import type { Executor, InferContext } from '../types.ts'
import { CircuitBreaker } from './breaker.ts'
import type { RemoteModelConfig, RemoteSettings, TensorDecl } from './config.ts'
import { UpstreamError } from './errors.ts'
import { RetryBudget } from './retry-budget.ts'
import { batchOf, toDeclared, type Binding, type RawOutputs } from './tensors.ts'

/** What an upstream says about a model (V2 metadata, a TF signature). */
export interface UpstreamMetadata {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  readonly version?: string | undefined
}

export interface UpstreamInput {
  readonly name: string
  readonly tensor: TensorMap[string]
}

/** One protocol (a kind over REST or gRPC). Adapters throw UpstreamError or the signal's reason. */
export interface ProtocolAdapter {
  /** Upstream metadata; null when the protocol has none (Seldon v1): then YAML must declare it. */
  fetchMetadata(signal: AbortSignal, timeoutMs: number): Promise<UpstreamMetadata | null>
  /** One call: `timeoutMs` is what is left of the budget (sent as the gRPC deadline). */
  infer(inputs: readonly UpstreamInput[], outputs: readonly string[], signal: AbortSignal, timeoutMs: number): Promise<RawOutputs>
  close(): Promise<void>
}

/**
 * A call cut off at the deadline counts against the upstream only if it was given at least
 * this long, and at least the upstream's usual (smoothed) latency.
 */
export const FAIR_CHANCE_MIN_MS = 5

/** How long load() waits for an upstream's metadata. */
export const METADATA_TIMEOUT_MS = 10_000

/** Reason a hedge's losing attempt is aborted with. */
const HEDGE_LOST = new ModelError(ModelErrorCode.MODEL_FAILED, 'another attempt answered first')

export class RemoteExecutor implements Executor {
  readonly name: string
  readonly kind: string
  private readonly config: RemoteModelConfig
  private readonly settings: RemoteSettings
  private readonly adapter: ProtocolAdapter
  readonly breaker: CircuitBreaker
  private readonly retryBudget: RetryBudget
  private meta: ModelMetadata | undefined
  private inputs: readonly Binding[] = []
  private outputs: readonly Binding[] = []
  private upstreamOutputs: readonly string[] = []
  /** Smoothed latency of successful calls: a retry is made only if this much budget is left. */
  private expectedMs = 0

  constructor(name: string, kind: string, config: RemoteModelConfig, settings: RemoteSettings, adapter: ProtocolAdapter) {
    this.name = name
    this.kind = kind
    this.config = config
    this.settings = settings
    this.adapter = adapter
    this.breaker = new CircuitBreaker(settings.breaker)
    this.retryBudget = new RetryBudget(settings.retryBudget)
  }

  metadata(): ModelMetadata {
    if (!this.meta) throw new Error(`model ${this.name} is not loaded`)
    return this.meta
  }

  async load(): Promise<void> {
    const declared = { inputs: this.config.inputs, outputs: this.config.outputs }
    let upstream: UpstreamMetadata | null = null
    let failure: string | undefined
    try {
      upstream = await this.adapter.fetchMetadata(AbortSignal.timeout(METADATA_TIMEOUT_MS), METADATA_TIMEOUT_MS)
    } catch (err) {
      failure = (err as Error).message
    }
    const resolve = (which: 'inputs' | 'outputs'): Binding[] => {
      const decls = declared[which]
      const known = upstream?.[which]
      if (decls) {
        // Declared in YAML: the upstream, when it answers, must have each tensor named.
        const missing = known && known.length > 0 ? decls.filter((d) => !known.some((k) => k.name === upstreamName(d))) : []
        if (missing.length) {
          throw new Error(`${which} ${missing.map(upstreamName).join(', ')} not in the upstream's metadata (it has ${known!.map((k) => k.name).join(', ')})`)
        }
        // Widths may differ (an FP64 answer fills an FP32); strings and numbers never mix, so
        // such a declaration would fail every call: refuse it now.
        for (const d of decls) {
          const theirs = known?.find((k) => k.name === upstreamName(d))?.datatype
          if (theirs && (theirs === 'BYTES') !== (d.datatype === 'BYTES')) {
            throw new Error(`${which.slice(0, -1)} ${upstreamName(d)} is declared ${d.datatype}, but the upstream's metadata says ${theirs}`)
          }
        }
        return decls.map((d) => ({ spec: { name: d.name, datatype: d.datatype, shape: d.shape }, upstream: upstreamName(d) }))
      }
      if (known && known.length > 0) return known.map((spec) => ({ spec, upstream: spec.name }))
      throw new Error(
        failure
          ? `cannot read ${which} from the upstream (${failure}); declare them in YAML`
          : `the upstream gives no ${which} for this model; declare them in YAML`,
      )
    }
    this.inputs = resolve('inputs')
    this.outputs = resolve('outputs')
    this.upstreamOutputs = this.outputs.map((b) => b.upstream)
    this.meta = {
      name: this.name,
      version: String(this.config.version ?? upstream?.version ?? '1'),
      kind: this.kind,
      inputs: this.inputs.map((b) => b.spec),
      outputs: this.outputs.map((b) => b.spec),
    }
  }

  infer(inputs: TensorMap, ctx: InferContext): Promise<TensorMap> {
    if (!this.breaker.allow()) {
      const wait = Math.ceil(this.breaker.retryInMs())
      return Promise.reject(
        new ModelError(ModelErrorCode.CIRCUIT_OPEN, `circuit open after ${this.settings.breaker.failures} consecutive failures; next probe in ${wait} ms`, true),
      )
    }
    this.retryBudget.deposit()
    return this.call(inputs, ctx)
  }

  private async call(inputs: TensorMap, ctx: InferContext): Promise<TensorMap> {
    const wire = this.inputs.map((b) => ({ name: b.upstream, tensor: inputs[b.spec.name]! }))
    const batch = batchOf(inputs, this.meta!.inputs)
    const started = performance.now()
    for (let attempt = 0; ; attempt++) {
      try {
        const raw = await this.hedged(wire, ctx)
        const outputs = toDeclared(raw, this.outputs, batch)
        this.breaker.success()
        const took = performance.now() - started
        this.expectedMs = this.expectedMs === 0 ? took : this.expectedMs * 0.8 + took * 0.2
        return outputs
      } catch (err) {
        if (ctx.signal.aborted) {
          // Cut off at the deadline after a fair chance: the upstream was too slow, a failure.
          // Cut off sooner than it usually answers (a client's tiny budget_ms), or cancelled
          // because the collector decided: no verdict, so no client can open the circuit for all.
          // "Had" is the budget the call was given, not how late the deadline timer fired.
          const given = ctx.deadline - started
          if (performance.now() >= ctx.deadline - 1 && given >= Math.max(FAIR_CHANCE_MIN_MS, this.expectedMs)) this.breaker.failure()
          else this.breaker.release()
          throw ctx.signal.reason
        }
        const left = ctx.deadline - performance.now()
        if (err instanceof UpstreamError && err.retryable && attempt < this.settings.retries && left > this.expectedMs && this.retryBudget.withdraw()) {
          continue
        }
        this.breaker.failure()
        throw err
      }
    }
  }

  /** One attempt, plus a second one after `hedge_after_ms` if the first has not answered. */
  private hedged(wire: readonly UpstreamInput[], ctx: InferContext): Promise<RawOutputs> {
    if (this.settings.hedgeAfterMs <= 0) return this.attempt(wire, ctx, ctx.signal)
    return new Promise<RawOutputs>((resolve, reject) => {
      const group = new AbortController()
      const onAbort = (): void => group.abort(ctx.signal.reason)
      ctx.signal.addEventListener('abort', onAbort, { once: true })
      let running = 0
      let settled = false
      let firstError: unknown
      const settle = (): void => {
        settled = true
        clearTimeout(timer)
        ctx.signal.removeEventListener('abort', onAbort)
      }
      const launch = (): void => {
        running++
        this.attempt(wire, ctx, group.signal).then(
          (out) => {
            if (settled) return
            settle()
            group.abort(HEDGE_LOST) // the other attempt, if any, is cancelled
            resolve(out)
          },
          (err: unknown) => {
            running--
            firstError ??= err
            if (settled || running > 0) return
            settle()
            reject(firstError as Error)
          },
        )
      }
      const timer = setTimeout(() => {
        if (!settled && ctx.deadline - performance.now() > 0 && this.retryBudget.withdraw()) launch()
      }, this.settings.hedgeAfterMs)
      launch()
    })
  }

  /** One request, with the remaining budget (capped by timeout_ms) and aborted by `parent`. */
  private async attempt(wire: readonly UpstreamInput[], ctx: InferContext, parent: AbortSignal): Promise<RawOutputs> {
    const left = ctx.deadline - performance.now()
    if (parent.aborted) throw parent.reason
    if (this.settings.timeoutMs >= left) {
      // The deadline is the limit: the caller's signal fires then (no timer of our own, so an
      // upstream cut off at the deadline is reported as `timeout`, not as an error).
      try {
        return await this.adapter.infer(wire, this.upstreamOutputs, parent, left)
      } catch (err) {
        if (err instanceof UpstreamError && err.code === ModelErrorCode.UPSTREAM_UNAVAILABLE && !parent.aborted && ctx.deadline - performance.now() <= 1) {
          // The gRPC deadline fired a hair before the caller's timer: let that timer decide.
          await abortOf(parent, 50)
          if (parent.aborted) throw parent.reason
        }
        throw err
      }
    }
    const capped = new AbortController()
    const onAbort = (): void => capped.abort(parent.reason)
    parent.addEventListener('abort', onAbort, { once: true })
    const capMs = this.settings.timeoutMs
    const timer = setTimeout(() => capped.abort(new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, `no answer within timeout_ms ${capMs}`)), capMs)
    try {
      return await this.adapter.infer(wire, this.upstreamOutputs, capped.signal, capMs)
    } catch (err) {
      throw capped.signal.aborted ? capped.signal.reason : err
    } finally {
      clearTimeout(timer)
      parent.removeEventListener('abort', onAbort)
    }
  }

  close(): Promise<void> {
    return this.adapter.close()
  }
}

const upstreamName = (d: TensorDecl): string => d.upstream ?? d.name

/** Resolves when `signal` aborts, or after `maxMs` if nothing aborts it. */
function abortOf(signal: AbortSignal, maxMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, maxMs)
    signal.addEventListener('abort', done, { once: true })
  })
}
