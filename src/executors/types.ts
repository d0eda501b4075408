import type { TObject } from 'typebox'
import { limited } from '../at-most.ts'
import type { GatewayConfig } from '../config/load.ts'
import type { MetricsSink, ModelMetadata, OptionContext } from '../types.ts'
import type { TensorMap } from '../tensor/index.ts'

export interface InferContext {
  /** Fires when the request is decided, cancelled, or out of time: stop working. */
  readonly signal: AbortSignal
  /** True once the request is decided, cancelled or out of time (a check that makes no signal). */
  readonly over: boolean
  /**
   * The position in the ensemble of the member being started (0 = most preferred), during
   * infer's synchronous part: a shared resource may serve earlier members first.
   */
  readonly member: number
  /** Whether the decision may come without this member (Strategy.spareable), during infer's synchronous part. */
  readonly spareable: boolean
  /** Absolute deadline on the `performance.now()` clock. Remote calls get `deadline - now`. */
  readonly deadline: number
  /** A run off any request's path (offPathContext): no client waits on it. */
  readonly offPath?: boolean
}

/**
 * The context of a run off any request's path (a shadow, a gate's run, a canary's comparison):
 * a second member's place on a lane (the main thread's keeps spare ones in a queue of their
 * own: inline-queue.ts), over once `signal` aborts (its time limit), so a lane drops it if it
 * has not started yet.
 */
export function offPathContext(signal: AbortSignal, deadline: number, spareable: boolean): InferContext {
  return {
    signal,
    get over() {
      return signal.aborted
    },
    member: 1,
    spareable,
    deadline,
    offPath: true,
  }
}

/**
 * `executor`'s run of `inputs` off any request's path (offPathContext), given at most `ms`:
 * then it is over, and rejects with an Error saying `reason` (at-most.ts, limited). `wrap`:
 * around the run (a shadow's trace span).
 */
export function inferOffPath(
  executor: Executor,
  inputs: TensorMap,
  ms: number,
  reason: string,
  spareable: boolean,
  wrap?: (run: () => Promise<TensorMap>) => Promise<TensorMap>,
): Promise<TensorMap> {
  return limited(ms, reason, (signal) => {
    const ctx = offPathContext(signal, performance.now() + ms, spareable)
    return wrap ? wrap(() => executor.infer(inputs, ctx)) : executor.infer(inputs, ctx)
  })
}

/**
 * A key an executor's outputs may carry: the rows of the batched run the request ran in
 * (dynamic batching). The request's annotation reports it as the model's `batch`.
 */
export const BATCH_ROWS: unique symbol = Symbol('specserve.batchRows')

export type BatchedOutputs = TensorMap & { readonly [BATCH_ROWS]?: number; readonly [RAN_VERSION]?: string; readonly [ANSWERED_VERSION]?: string }

/**
 * A key an executor's outputs (or its error) may carry: the version that ran, when it is not
 * the model's configured one (a canary). The request's annotation names it.
 */
export const RAN_VERSION: unique symbol = Symbol('specserve.ranVersion')

/**
 * A key a remote model's outputs carry when its upstream's answer names the version that
 * answered (OIP's model_version, TF Serving's model_spec.version). The request's annotation
 * names it; unlike RAN_VERSION, the call counts as the model's own, whatever the version.
 */
export const ANSWERED_VERSION: unique symbol = Symbol('specserve.answeredVersion')

/** The version an answer says ran, when it says: a canary's, or the one a remote upstream named. */
export const versionOf = (outputs: TensorMap): string | undefined => (outputs as BatchedOutputs)[RAN_VERSION] ?? (outputs as BatchedOutputs)[ANSWERED_VERSION]

/**
 * The method an executor that sends runs to one of several versions (a canary rollout)
 * answers for a run of `ctx` it started: the version it went to (undefined: the model's
 * configured one). The request asks it for a run it was decided without (cut before it
 * answered), which is annotated and counted with it, as its answer or failure would have been.
 */
export const ROUTED_VERSION: unique symbol = Symbol('specserve.routedVersion')

/** An executor that knows which version each of its runs went to. */
export interface RoutesVersions {
  [ROUTED_VERSION](ctx: InferContext): string | undefined
}

/** One model the gateway can call. Created from config, loaded once, shared by requests. */
export interface Executor {
  readonly name: string
  readonly kind: string
  /** Declared or discovered metadata; valid after `load()` resolves. */
  metadata(): ModelMetadata
  /** Load, read or fetch metadata, warm with one inference. Rejects with a readable message. */
  load(): Promise<void>
  /** Throws ModelError for known failures; any other throw is reported as MODEL_FAILED. */
  infer(inputs: TensorMap, ctx: InferContext): Promise<TensorMap>
  close(): Promise<void>
  /** Kind-specific metrics, reported at collection time (a remote model's circuit state). */
  collect?(out: MetricsSink): void
  /** Kind-specific fields of the model's description (a remote model's circuit, an ONNX model's placement). */
  describe?(): Readonly<Record<string, unknown>>
}

/** Something a kind shares between its models in one gateway (the ONNX worker pool). */
export interface SharedResource {
  /** The gateway is stopping: refuse work not begun (loads) so its models' close need not wait for it. */
  beginClose?(): void
  close(): Promise<void>
  collect?(out: MetricsSink): void
  /** Is a thread of it inside a run that cannot be cut (a close waits for it)? A close past its bound says so. */
  inRun?(): boolean
}

/** What a kind's models get from the gateway that creates them. */
export interface ExecutorEnv {
  /** The gateway's `executors` settings (worker pool size, queue). */
  readonly executors: GatewayConfig['executors']
  /** The one `key` resource of this gateway, created on first use and closed with the gateway. */
  shared<R extends SharedResource>(key: string, create: () => R): R
}

export interface ParseContext extends OptionContext {
  /** The config file's directory: relative paths resolve against it. */
  readonly baseDir: string
}

/** Registry entry for one executor kind (`kind:` in YAML). */
export interface ExecutorKind<Spec = unknown, Entry = never> {
  readonly kind: string
  /** Its runs are calls to another process (traced as CLIENT spans; an in-process run is INTERNAL). */
  readonly remote?: boolean
  /** TypeBox schema of the model's YAML entry (including `kind`). */
  readonly schema: TObject
  /**
   * The entry, already valid against `schema`, as typed settings with defaults applied and
   * files read, parsed once at config load; what cannot be checked by the schema (an
   * unreadable file, fields that exclude each other) goes to `ctx.problem`. Without it the
   * validated entry is the spec.
   */
  parse?(entry: Entry, ctx: ParseContext): Spec
  /** Files the model reads: a reload re-creates the model when one of them changes. */
  files?(spec: Spec): readonly string[]
  create(name: string, spec: Spec, env: ExecutorEnv): Executor
}
