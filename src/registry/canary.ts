// A model during a canary rollout: the serving (stable) version and the canary, both loaded.
// `weight` of the model's runs go to the canary, and its answer is the model's answer,
// annotated with the canary's version. On those runs the stable version runs too, once the
// canary has answered (off the request's path, with its own time limit), so agreement is
// measured on the same inputs. After `promote_after` canary runs that answered or failed,
// the evidence is reported once: the registry promotes or rolls back. A canary run the
// request was decided without (or cut by its deadline or a cancel) is annotated and counted
// under the canary's version, but is no evidence unless its answer still comes.
import { labelKey, resolveVoteSource, type VoteSource } from '../collectors/outputs.ts'
import { ModelError, ModelErrorCode } from '../errors.ts'
import type { BatchedOutputs, Executor, InferContext } from '../executors/types.ts'
import { BATCH_ROWS, inferOffPath, RAN_VERSION, ROUTED_VERSION, type RoutesVersions } from '../executors/types.ts'
import { commonOutputs, onlyOutputs } from '../starter/ensemble.ts'
import type { TensorMap, TensorSpec } from '../tensor/index.ts'
import type { MetricsSink, ModelMetadata } from '../types.ts'
import { IncompatibleVersion } from './compatible.ts'
import type { CanarySettings } from './config.ts'

/** What a canary has shown so far. */
export interface CanaryEvidence {
  /**
   * Canary runs that answered or failed. A run that never started (skipped) does not count;
   * nor does one the request was decided without, or cut by its deadline or a cancel, unless
   * its answer still comes (late, it counts as answered): its failure then is mostly the abort.
   */
  readonly requests: number
  readonly errors: number
  readonly error_rate: number
  /** Canary answers compared with the stable version's on the same inputs, and how many agreed. */
  readonly compared: number
  readonly agreed: number
  readonly agreement: number | null
  /** Canary answers of a classifier that could not be compared (no label in the canary's answer, or the stable run failed or was too slow). */
  readonly uncompared: number
  /** A classifier: agreement is evidence, so a canary with nothing compared proves nothing (a regression has no agreement). */
  readonly labeled: boolean
}

export interface CanaryPlan {
  readonly version: string
  /** The canary's executor spec (its file). */
  readonly spec: unknown
  readonly settings: CanarySettings
  /** Called once, when `promote_after` canary runs are in. */
  readonly decide: (evidence: CanaryEvidence) => void
}

/** The stable version's comparison run gets this long. */
const COMPARE_LIMIT_MS = 5000

export class CanaryExecutor implements Executor, RoutesVersions {
  readonly name: string
  readonly kind: string
  readonly stable: Executor
  readonly canary: Executor
  private readonly plan: CanaryPlan
  private source: VoteSource | undefined
  private requests = 0
  private errors = 0
  private compared = 0
  private agreed = 0
  private uncompared = 0
  private decided = false
  /** Comparison runs still going: the decision waits for them. */
  private comparing = 0
  /** The outputs both versions give (the serving version's order): what the pair declares and answers with. */
  private outputs: readonly TensorSpec[] | undefined
  /** Each version's answers are cut to `outputs` when it gives more. */
  private cutStable = false
  private cutCanary = false
  /**
   * The requests (their contexts: a model is in an ensemble once) whose run went to the
   * canary: a run cut before it answered is the canary's. Kept after the run settles (its
   * outcome can reach the request a few microtasks after the request is decided without
   * it); weak, so the mark goes with the request.
   */
  private readonly onCanary = new WeakSet<InferContext>()

  constructor(stable: Executor, canary: Executor, plan: CanaryPlan) {
    this.name = stable.name
    this.kind = stable.kind
    this.stable = stable
    this.canary = canary
    this.plan = plan
  }

  metadata(): ModelMetadata {
    const stable = this.stable.metadata()
    return this.outputs ? { ...stable, outputs: this.outputs } : stable
  }

  async load(): Promise<void> {
    // Both settle before a failure is thrown: the refused reload then closes the pair, and a
    // load still going would register (or open) what that close never sees.
    const [stable, canary] = await Promise.allSettled([this.stable.load(), this.canary.load()])
    if (stable.status === 'rejected') throw stable.reason
    if (canary.status === 'rejected') throw canary.reason
    const theirs = this.canary.metadata()
    const ours = this.stable.metadata()
    const describe = (m: ModelMetadata): string => JSON.stringify(m.inputs.map((s) => [s.name, s.datatype, s.anyRank ? 'any shape' : s.shape]))
    if (describe(theirs) !== describe(ours)) throw new IncompatibleVersion(`the canary's inputs ${describe(theirs)} differ from the serving version's ${describe(ours)}`)
    // Either version may answer a run, so the pair gives what both give. An output only one of
    // them gives is no output of the pair: whether the ensembles may lose it is decided where
    // they are compared before and after the swap (compatible.ts), not here.
    const outputs = commonOutputs([ours.outputs, theirs.outputs])
    this.outputs = outputs
    this.cutStable = ours.outputs.length > outputs.length
    this.cutCanary = theirs.outputs.length > outputs.length
    const source = resolveVoteSource(outputs)
    this.source = source.kind === 'invalid' || source.kind === 'regression' ? undefined : source
  }

  infer(inputs: TensorMap, ctx: InferContext): Promise<TensorMap> {
    if (this.decided || Math.random() >= this.plan.settings.weight) return this.cutStable ? this.stable.infer(inputs, ctx).then((outputs) => this.cut(outputs)) : this.stable.infer(inputs, ctx)
    const version = this.plan.version
    this.onCanary.add(ctx)
    let running: Promise<TensorMap>
    try {
      running = this.canary.infer(inputs, ctx)
    } catch (err) {
      running = Promise.reject(err as Error) // a failure thrown at once is the canary's too
    }
    return running.then(
      (outputs) => {
        // The comparison starts first (comparing++ at once), so the decision this run may trigger waits for it.
        void this.compare(inputs, outputs)
        this.count(false)
        return { ...(this.cutCanary ? this.cut(outputs) : outputs), [RAN_VERSION]: version }
      },
      (err: unknown) => {
        // Too late to matter: the request no longer reads this failure (and the error may be its shared abort reason).
        if (ctx.over) throw err
        // A run never started (no time left for it, queues full) says nothing about the canary.
        if (!(err instanceof ModelError && err.skipped)) this.count(true)
        throw versioned(err, version)
      },
    )
  }

  /** `outputs` with only the pair's outputs (a batch's rows kept). */
  private cut(outputs: TensorMap): TensorMap {
    return { ...onlyOutputs(outputs, this.outputs!), [BATCH_ROWS]: (outputs as BatchedOutputs)[BATCH_ROWS] }
  }

  /** The canary's version for a request whose run went to it (asked for a run still out as the request is decided). */
  [ROUTED_VERSION](ctx: InferContext): string | undefined {
    return this.onCanary.has(ctx) ? this.plan.version : undefined
  }

  private count(failed: boolean): void {
    this.requests++
    if (failed) this.errors++
    this.maybeDecide()
  }

  /** Once `promote_after` canary runs are in and their comparisons done: the evidence, once. */
  private maybeDecide(): void {
    if (this.decided || this.requests < this.plan.settings.promoteAfter || this.comparing > 0) return
    this.decided = true
    this.plan.decide(this.evidence())
  }

  /** The stable version on the same inputs, after the canary answered. */
  private async compare(inputs: TensorMap, canaryOutputs: TensorMap): Promise<void> {
    const source = this.source
    if (!source) return
    this.comparing++
    try {
      // Off the request's path, as a shadow: no decision waits for it.
      const stableOutputs = await inferOffPath(this.stable, inputs, COMPARE_LIMIT_MS, 'over the comparison limit', true)
      const a = labelKey(canaryOutputs, source)
      const b = labelKey(stableOutputs, source)
      if (a === undefined || b === undefined) {
        this.uncompared++ // an answer without the label to compare (the canary's outputs differ)
        return
      }
      this.compared++
      if (a === b) this.agreed++
    } catch {
      this.uncompared++ // the stable version failed or was too slow: nothing to compare
    } finally {
      this.comparing--
      this.maybeDecide()
    }
  }

  evidence(): CanaryEvidence {
    return {
      requests: this.requests,
      errors: this.errors,
      error_rate: this.requests ? this.errors / this.requests : 0,
      compared: this.compared,
      agreed: this.agreed,
      agreement: this.compared ? this.agreed / this.compared : null,
      uncompared: this.uncompared,
      labeled: this.source !== undefined,
    }
  }

  describe(): Readonly<Record<string, unknown>> {
    return { ...this.stable.describe?.(), canary: { version: this.plan.version, weight: this.plan.settings.weight, promote_after: this.plan.settings.promoteAfter, ...this.evidence() } }
  }

  collect(out: MetricsSink): void {
    this.stable.collect?.(out)
  }

  async close(): Promise<void> {
    await Promise.all([this.stable.close(), this.canary.close()])
  }
}

/**
 * The canary's failure, naming its version. Errors are often shared (one per closing model,
 * crashed worker or request abort, module-level singletons): writing the version on one would
 * name the canary on every other model's failure with it. An object made from the error
 * inherits its code, message and stack, and carries the version alone.
 */
function versioned(err: unknown, version: string): object {
  const base = err !== null && typeof err === 'object' ? err : new ModelError(ModelErrorCode.MODEL_FAILED, String(err))
  return Object.create(base, { [RAN_VERSION]: { value: version, enumerable: true } }) as object
}
