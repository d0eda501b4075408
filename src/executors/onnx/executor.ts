// `kind: onnx` — an ONNX model embedded in the process: inline on the main thread's session
// when it is measured to be tiny (placement.ts), otherwise in worker threads (the
// gateway-wide pool, or workers of its own with `dedicated_workers`).
import { stat } from 'node:fs/promises'
import { stampOf } from '../../file-stamp.ts'
import type { TensorMap } from '../../tensor/index.ts'
import type { MetricsSink, ModelMetadata } from '../../types.ts'
import type { Executor, ExecutorEnv, ExecutorKind, InferContext } from '../types.ts'
import { checkBatchDimension, rowsOf, type BatchFigures } from './batch.ts'
import { onnxSchema, parseOnnxEntry, type OnnxEntry, type OnnxSpec } from './config.ts'
import { modelFamily, type ModelFamily } from './family.ts'
import { InlineModel } from './inline.ts'
import { Placement } from './placement.ts'
import type { PoolLane } from './lane.ts'
import { OnnxPool } from './pool.ts'
import { RETIRED_POOLS, RetiredPools } from './retired-pools.ts'
import { wouldMiss } from './run-floor.ts'

/**
 * The largest model file a late move inline opens. onnxruntime creates a session on the
 * thread that asks, holding it: measured on the 2-core CI box, once the workers have
 * started the runtime, 1–64 KB models open in 2–4 ms, 461 KB in 16 ms, 4.5 MB in 31 ms.
 */
const LATE_OPEN_MAX_BYTES = 64 * 1024

const CHANGED = "its file changed since the workers loaded it: it stays with the workers' copy"

/** Queue of a dedicated pool: jobs beyond it are skipped OVERLOADED. */
const DEDICATED_QUEUE = 256

/** The gateway-wide pool's key among the gateway's shared resources. */
export const SHARED_POOL = 'onnx-pool'

/**
 * Pool key per executor instance: after a hot reload the old and the new executor of a
 * model (another file) are both loaded until the old one's predicts finish.
 */
const instances = new Map<string, number>()
const poolKey = (name: string): string => {
  const n = (instances.get(name) ?? 0) + 1
  instances.set(name, n)
  return n === 1 ? name : `${name}#${n}`
}

export const onnxExecutorKind: ExecutorKind<OnnxSpec, OnnxEntry> = {
  kind: 'onnx',
  schema: onnxSchema,
  parse: parseOnnxEntry,
  files: (spec) => [spec.path],
  create: (name, spec, env) => new OnnxExecutor(name, spec, env),
}

const closedWhileLoading = (name: string): Error => new Error(`model ${name} was closed while loading`)

class OnnxExecutor implements Executor {
  readonly name: string
  readonly kind = 'onnx'
  private readonly spec: OnnxSpec
  private readonly env: ExecutorEnv
  private readonly key: string
  private readonly dedicated: OnnxPool | undefined
  /** Where its dedicated workers go when it closes, their stuck threads still running. */
  private readonly retired: RetiredPools | undefined
  private meta: ModelMetadata | undefined
  private placement: Placement | undefined
  private inline: InlineModel | undefined
  /** The inline session opened after the load (see openInline), once at most; null until then. */
  private opening: Promise<void> | null = null
  /** The model file's size and mtime when loaded: a late inline session must read the same bytes. */
  private closed = false
  /** The load under way or done: close() waits for it, so nothing it registers or opens outlives the executor. */
  private loading: Promise<void> | undefined
  private workerRuns = 0
  /** What kind of estimator its graph holds (read at load): best-quality's validate warning compares families. */
  private family: ModelFamily | undefined
  /** The pool it is registered in and its lane there (none for a model pinned to the main thread). */
  private pool: OnnxPool | undefined
  private lane: PoolLane | undefined

  constructor(name: string, spec: OnnxSpec, env: ExecutorEnv) {
    this.name = name
    this.spec = spec
    this.env = env
    this.key = poolKey(name)
    this.dedicated = spec.dedicatedWorkers > 0 ? new OnnxPool({ workers: spec.dedicatedWorkers, queueLimit: DEDICATED_QUEUE, nice: env.executors.onnx_worker_nice }) : undefined
    this.retired = this.dedicated && env.shared(RETIRED_POOLS, () => new RetiredPools())
    if (this.dedicated) this.retired!.made(this.dedicated)
  }

  private poolToUse(): OnnxPool {
    if (this.dedicated) return this.dedicated
    const { onnx_workers: workers, onnx_queue: queueLimit, onnx_worker_nice: nice } = this.env.executors
    return this.env.shared(SHARED_POOL, () => new OnnxPool({ workers, queueLimit, nice }))
  }

  metadata(): ModelMetadata {
    if (!this.meta) throw new Error(`model ${this.name} is not loaded`)
    return this.meta
  }

  load(): Promise<void> {
    // Set before its first step runs: a close called from within that step waits for it too.
    this.loading = Promise.resolve().then(() => this.loadOnce())
    return this.loading
  }

  /**
   * A close can come while the load is still going (a refused reload closes its fresh
   * runtimes, a sibling's load having failed): close() waits for it, so what it registered
   * or opened is released there; it stops at the next step once closed.
   */
  private async loadOnce(): Promise<void> {
    const { spec } = this
    const maxMs = spec.inlineMaxMs ?? this.env.executors.inline_max_ms
    if (spec.placement === 'inline') {
      // Pinned to the main thread: it never runs in the workers, so it is not loaded there.
      let pinned: Placement | undefined
      const inline = await InlineModel.open(spec.path, (times) => pinned?.observeInline(times), { maxBatch: spec.batching?.maxBatch })
      // Closed meanwhile: as in the workers, the load fails (close() waits for it, then closes the session).
      if (this.closed) {
        await inline.close()
        throw closedWhileLoading(this.name)
      }
      if (spec.batching) {
        try {
          checkBatchDimension(inline)
        } catch (err) {
          await inline.close()
          throw err
        }
      }
      this.inline = inline
      this.placement = pinned = new Placement('inline', maxMs, inline.warmRunsMs)
      this.meta = { name: this.name, version: spec.version, kind: 'onnx', inputs: this.inline.inputs, outputs: this.inline.outputs }
      this.family = modelFamily(spec.path)
      return
    }
    const pool = this.poolToUse()
    const loaded = await pool.register(this.key, spec.path, { cap: spec.maxConcurrency, batching: spec.batching })
    this.pool = pool
    this.lane = pool.laneStats(this.key)
    // Closed meanwhile: close() unregisters it once this settles; no inline session opened for nothing.
    if (this.closed) throw closedWhileLoading(this.name)
    if (spec.batching) checkBatchDimension(loaded)
    // Batches form in the workers: a batching model never runs inline.
    const placement = spec.batching
      ? new Placement('worker', maxMs, loaded.warmRunsMs, 'batching: batches form in the workers')
      : new Placement(spec.placement, maxMs, loaded.warmRunsMs, spec.dedicatedWorkers > 0 ? 'dedicated_workers: it runs in workers of its own' : undefined)
    this.placement = placement
    if (placement.wantsInline) {
      // The workers have it loaded: a session that fails on the main thread leaves it there, as after the load.
      try {
        const inline = await this.openSameFile(placement)
        if (typeof inline === 'string') placement.stayInWorkers(inline)
        else this.inline = inline
      } catch (err) {
        placement.stayInWorkers(`an inline session failed to open: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    this.meta = { name: this.name, version: spec.version, kind: 'onnx', inputs: loaded.inputs, outputs: loaded.outputs }
    this.family = modelFamily(spec.path)
  }

  infer(inputs: TensorMap, ctx: InferContext): Promise<TensorMap> {
    const placement = this.placement!
    if (this.inline && placement.where(rowsOf(inputs)) === 'inline') {
      // As in the pool: a run that cannot finish in the time left is never started.
      const left = ctx.deadline - performance.now()
      if (left < placement.typicalMs) return Promise.reject(wouldMiss(placement.typicalMs, left))
      // The lane's own promise, not a wrapper: see inline-lane.ts on why the Run must react to it directly.
      return this.inline.run(inputs, ctx)
    }
    return this.runInWorker(placement, inputs, ctx)
  }

  private async runInWorker(placement: Placement, inputs: TensorMap, ctx: InferContext): Promise<TensorMap> {
    const outputs = await this.pool!.run(this.key, inputs, ctx.signal, ctx.deadline)
    this.workerRuns++
    const late = placement.observeWorker(this.lane!.times, this.inline !== undefined)
    if (late !== null && this.opening === null && !this.closed) {
      this.opening = this.openInline(placement, late).catch((err: unknown) => {
        placement.stayInWorkers(`an inline session failed to open: ${err instanceof Error ? err.message : String(err)}`)
      })
    }
    return outputs
  }

  /**
   * A model the load measured slow (a warm-up on a busy box: other loads, the JIT, a
   * profiler) whose worker runs show it tiny gets its inline session now, once; it keeps
   * running in the workers until the session is open. Opening holds the event loop for a
   * few milliseconds, once: only files up to LATE_OPEN_MAX_BYTES, and only the bytes the
   * workers loaded.
   */
  private async openInline(placement: Placement, reason: string): Promise<void> {
    const { size } = await stat(this.spec.path)
    if (size > LATE_OPEN_MAX_BYTES) {
      return placement.stayInWorkers(`worker runs tiny, but its file (${size} bytes) is over ${LATE_OPEN_MAX_BYTES} to open on the event loop: it stays in the workers`)
    }
    // Judged by the worker runs that moved it, not by this session's warm-up: that is the
    // load's test again (zeros, a busy box), which these runs have just overruled.
    const measured = this.lane!.times.samples()
    const inline = await this.openSameFile(placement, measured)
    if (typeof inline === 'string') return placement.stayInWorkers(`worker runs tiny, but ${inline}`)
    if (this.closed) return inline.close()
    this.inline = inline
    placement.moveInline(reason, measured)
  }

  /**
   * An inline session of the very file the workers loaded (its stamp, checked before and after
   * the open, as a worker checks it: worker.ts), or why there is none: the main thread must not
   * serve another model under the same name and version.
   */
  private async openSameFile(placement: Placement, seedMs?: readonly number[]): Promise<InlineModel | string> {
    if (!(await this.sameFile())) return CHANGED
    const inline = await InlineModel.open(this.spec.path, (times) => placement.observeInline(times), { seedMs })
    if (await this.sameFile()) return inline
    await inline.close()
    return CHANGED
  }

  private async sameFile(): Promise<boolean> {
    const stamp = this.lane?.stamp
    return stamp !== undefined && (await stampOf(this.spec.path)) === stamp
  }

  /** Where this model's batches form: its worker lane, or (pinned inline) the event loop. */
  private get batchFigures(): BatchFigures | undefined {
    return this.spec.batching ? (this.lane ?? this.inline?.batches) : undefined
  }

  describe(): Readonly<Record<string, unknown>> {
    const batching = this.spec.batching
    const figures = this.batchFigures
    return {
      family: this.family ?? null,
      placement: this.placement?.describe(this.inline?.times, this.lane?.times) ?? null,
      batching: batching && figures
        ? {
            max_batch: batching.maxBatch,
            max_queue_delay_ms: batching.maxDelayMs,
            runs: figures.runs,
            batches: figures.batches,
            batched_requests: figures.batchedRequests,
            // Over every run, the ones that carried one request included (batched_requests / batches is only the batched runs').
            requests_per_run: figures.runs === 0 ? null : Math.round(((figures.batchedRequests + figures.runs - figures.batches) / figures.runs) * 100) / 100,
            by_rows: figures.batchTimes.describe(),
          }
        : null,
    }
  }

  collect(out: MetricsSink): void {
    const current = this.placement?.current
    out.gauge('specserve_model_inline', 'Embedded model placed inline on the main thread (1) or in the workers (0).', [[{ model: this.name }, current === 'inline' ? 1 : 0]])
    out.counter('specserve_model_runs', 'Requests an embedded model answered, by where they ran (inline or worker); a batched run counts each of its requests.', [
      [{ model: this.name, placement: 'inline' }, this.inline?.ran ?? 0],
      [{ model: this.name, placement: 'worker' }, this.workerRuns],
    ])
    // Its own workers' gauges, named by the model (the shared pool's carry no label); once closed, RetiredPools reports what still runs.
    if (!this.closed) this.dedicated?.collect(out, { model: this.name })
    const figures = this.batchFigures
    if (figures) {
      out.counter('specserve_model_batches', 'Batched runs of an embedded model (two requests or more in one session.run).', [[{ model: this.name }, figures.batches]])
      out.counter('specserve_model_batched_requests', 'Requests an embedded model answered in a batched run.', [[{ model: this.name }, figures.batchedRequests]])
    }
  }

  async close(): Promise<void> {
    this.closed = true
    // Its failure is the load's to report; what it got as far as registering or opening is released below.
    await this.loading?.catch(() => undefined)
    this.pool?.unregister(this.key)
    await this.opening
    await this.inline?.close()
    // Not for its stuck threads, whose runs may never end: a reload or trial closing it would hold the reload queue.
    if (this.dedicated) await this.retired!.retire(this.name, this.dedicated)
  }
}
