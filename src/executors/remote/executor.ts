// The executor every remote kind shares. A kind supplies a ProtocolAdapter (how to encode a
// call and decode the answer over REST or gRPC); this class resolves the model's tensors
// (YAML declarations or the upstream's metadata) and composes the layers that make remote
// calls safe inside a latency budget (./resilience/): circuit breaker ∘ budget-aware
// retries ∘ hedging ∘ per-attempt timeout ∘ the protocol call, which gets the remaining
// budget and is aborted when the request is decided.
import { delay, limited } from '../../at-most.ts'
import { ModelErrorCode } from '../../errors.ts'
import { refuseUnservable, type NamedTensor, type TensorMap, type TensorSpec } from '../../tensor/index.ts'
import type { MetricsSink, ModelMetadata } from '../../types.ts'
import { ANSWERED_VERSION, type Executor, type InferContext } from '../types.ts'
import { upstreamAddress, type RemoteSettings, type TensorDecl } from './config.ts'
import { UpstreamError } from './errors.ts'
import { batchOf, fitOutputs, type Binding, type WireOutputs } from './outputs.ts'
import { ShownVersion } from './shown-version.ts'
import { CircuitBreaker } from './resilience/breaker.ts'
import { LatencyEstimate, type Call } from './resilience/call.ts'
import { withBreaker } from './resilience/circuit.ts'
import { withHedge } from './resilience/hedge.ts'
import { withRetry } from './resilience/retry.ts'
import { RetryBudget } from './resilience/retry-budget.ts'
import { withTimeout } from './resilience/timeout.ts'
import { TIMER_GRAIN_MS } from '../../timer-step.ts'

/** What an upstream says about a model (V2 metadata, a TF signature). */
export interface UpstreamMetadata {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  readonly version?: string | undefined
}

/**
 * A model whose version is the upstream's: the version annotations, GET /v1/models and
 * describe name instead of the config's `version` default ("1") when YAML pins none.
 */
export interface UpstreamVersioned {
  readonly upstreamVersion: string | undefined
}

/** One protocol (a kind over REST or gRPC). Adapters throw UpstreamError or the signal's reason. */
export interface ProtocolAdapter {
  /** Upstream metadata; null when the protocol has none (Seldon v1): then YAML must declare it. */
  fetchMetadata(signal: AbortSignal, timeoutMs: number): Promise<UpstreamMetadata | null>
  /** One call: `timeoutMs` is what is left of the budget (sent as the gRPC deadline). */
  infer(inputs: readonly NamedTensor[], outputs: readonly string[], signal: AbortSignal, timeoutMs: number): Promise<WireOutputs>
  close(): Promise<void>
}

/** How long load() waits for an upstream's metadata, unless the settings say (metadataTimeoutMs). */
export const METADATA_TIMEOUT_MS = 10_000

/**
 * How far before the caller's deadline a gRPC deadline can fire: it is set on the wall clock
 * in whole milliseconds (Date.now() + floor(left), up to 2 ms short), and timers fire up to
 * 1 ms early (timer-step.ts). A deadline error this close is the caller's deadline.
 */
const CLOCK_SLACK_MS = 2 + TIMER_GRAIN_MS

/** Circuit state as a number, so it can be graphed and alerted on. */
const CIRCUIT_STATE = { closed: 0, 'half-open': 1, open: 2 } as const

interface UpstreamRequest {
  readonly wire: readonly NamedTensor[]
  readonly batch: number | undefined
}

export class RemoteExecutor implements Executor, UpstreamVersioned {
  readonly name: string
  readonly kind: string
  private readonly settings: RemoteSettings
  private readonly adapter: ProtocolAdapter
  readonly breaker: CircuitBreaker
  private readonly call: Call<UpstreamRequest, TensorMap>
  private meta: ModelMetadata | undefined
  private inputs: readonly Binding[] = []
  private outputs: readonly Binding[] = []
  private upstreamOutputs: readonly string[] = []
  /**
   * Without a `version` in YAML the gateway calls the upstream's default version: the one its
   * metadata named at load (TF Serving's model_spec.version, the last of OIP's `versions`),
   * then as its answers name it (shown-version.ts). Undefined when YAML pins one (that one is
   * called) or no version is known.
   */
  get upstreamVersion(): string | undefined {
    return this.shown?.current
  }
  /** Null when YAML pins the version. */
  private shown: ShownVersion | null = null
  /** Why the upstream's metadata could not be read at load, when the YAML's declarations let it load anyway. */
  private unreached: string | undefined

  constructor(name: string, kind: string, settings: RemoteSettings, adapter: ProtocolAdapter) {
    this.name = name
    this.kind = kind
    this.settings = settings
    this.adapter = adapter
    this.breaker = new CircuitBreaker(settings.breaker)
    const latency = new LatencyEstimate()
    const budget = new RetryBudget(settings.retryBudget)
    const attempt = withTimeout(this.protocolCall, settings.timeoutMs)
    this.call = withBreaker(withRetry(withHedge(attempt, settings.hedgeAfterMs, budget), { retries: settings.retries, budget, latency }), this.breaker, latency)
  }

  metadata(): ModelMetadata {
    if (!this.meta) throw new Error(`model ${this.name} is not loaded`)
    return this.meta
  }

  async load(): Promise<void> {
    let upstream: UpstreamMetadata | null = null
    let failure: string | undefined
    const limitMs = this.settings.metadataTimeoutMs ?? METADATA_TIMEOUT_MS
    const timedOut = `no answer to the metadata call from ${upstreamAddress(this.settings)} within ${durationText(limitMs)} (the limit at load)`
    try {
      // A gRPC call's own deadline a hair past the limit: the limit's timer decides, and says so.
      upstream = await limited(limitMs, timedOut, (signal) => this.adapter.fetchMetadata(signal, limitMs + CLOCK_SLACK_MS))
    } catch (err) {
      failure = (err as Error).message
    }
    this.inputs = bindings('inputs', this.settings.inputs, upstream, failure)
    this.outputs = bindings('outputs', this.settings.outputs, upstream, failure)
    this.unreached = failure
    this.upstreamOutputs = this.outputs.map((b) => b.upstream)
    this.shown = this.settings.version === undefined ? new ShownVersion(upstream?.version) : null
    this.meta = {
      name: this.name,
      version: this.settings.version ?? upstream?.version ?? '1',
      kind: this.kind,
      inputs: this.inputs.map((b) => b.spec),
      outputs: this.outputs.map((b) => b.spec),
    }
  }

  infer(inputs: TensorMap, ctx: InferContext): Promise<TensorMap> {
    const wire = this.inputs.map((b) => ({ name: b.upstream, tensor: inputs[b.spec.name]! }))
    return this.call({ wire, batch: batchOf(inputs, this.meta!.inputs) }, ctx.signal, ctx.deadline)
  }

  describe(): Readonly<Record<string, unknown>> {
    const circuit = this.breaker.state
    const health = circuit === 'open' ? { circuit, next_probe_ms: Math.ceil(this.breaker.retryInMs()) } : { circuit }
    return this.unreached === undefined ? { health } : { health, metadata_error: this.unreached }
  }

  collect(out: MetricsSink): void {
    out.gauge('specserve_circuit_breaker_state', 'Circuit breaker of a remote model: 0 closed, 1 half-open, 2 open.', [[{ model: this.name }, CIRCUIT_STATE[this.breaker.state]]])
  }

  close(): Promise<void> {
    return this.adapter.close()
  }

  /** One request, with what is left of the budget, mapped onto the declared outputs. */
  private readonly protocolCall: Call<UpstreamRequest, TensorMap> = async (req, signal, deadline) => {
    if (signal.aborted) throw signal.reason
    let wire: WireOutputs
    try {
      wire = await this.adapter.infer(req.wire, this.upstreamOutputs, signal, deadline - performance.now())
    } catch (err) {
      if (err instanceof UpstreamError && err.code === ModelErrorCode.UPSTREAM_UNAVAILABLE && !signal.aborted && deadline - performance.now() <= CLOCK_SLACK_MS) {
        // The gRPC deadline fired just before the caller's timer: let that timer decide.
        await delay(50, signal)
        if (signal.aborted) throw signal.reason
      }
      throw err
    }
    const outputs = fitOutputs(wire, this.outputs, req.batch)
    const answered = wire[ANSWERED_VERSION]
    if (answered !== undefined && this.shown !== null) this.answeredBy(this.shown, answered, outputs)
    return outputs
  }

  /** The answer named the version that answered: its annotation says so, whichever it is; the model's shown version follows the rules of shown-version.ts. */
  private answeredBy(shown: ShownVersion, version: string, outputs: TensorMap): void {
    ;(outputs as { [ANSWERED_VERSION]?: string })[ANSWERED_VERSION] = version
    if (shown.answered(version, performance.now()) && this.meta) this.meta = { ...this.meta, version }
  }
}

const upstreamName = (d: TensorDecl): string => d.upstream ?? d.name

/** `10 s` for whole seconds, else `250 ms`. */
const durationText = (ms: number): string => (ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`)

/** A model's inputs or outputs: as declared in YAML (checked against the upstream's metadata), else the metadata's. */
function bindings(which: 'inputs' | 'outputs', decls: readonly TensorDecl[] | undefined, upstream: UpstreamMetadata | null, failure: string | undefined): Binding[] {
  const served = boundTensors(which, decls, upstream, failure)
  for (const { spec } of served) refuseUnservable(spec.name, which === 'inputs' ? 'input' : 'output')
  return served
}

function boundTensors(which: 'inputs' | 'outputs', decls: readonly TensorDecl[] | undefined, upstream: UpstreamMetadata | null, failure: string | undefined): Binding[] {
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
    failure ? `cannot read ${which} from the upstream (${failure}); declare them in YAML` : `the upstream gives no ${which} for this model; declare them in YAML`,
  )
}
