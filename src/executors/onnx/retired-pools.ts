// The dedicated workers of closed ONNX executors (a model version a reload replaced, the fresh
// runtime of a trial or of a refused reload) whose threads set aside as stuck still run. A
// run cannot be cut, so an executor's close does not wait for them: a reload or trial closing
// its fresh runtimes would hold the reload queue for as long as such a run lasts, maybe for
// ever. They are kept here instead, one keeper per gateway (a shared resource): their threads
// stay in specserve_onnx_workers_set_aside (with `model` and `retired="true"`) until they exit,
// and the gateway's close waits for them as for the shared pool's (a clean exit cannot leave
// a thread inside a run behind). Every dedicated pool is known here from its making, so that
// close also waits for one retired later: a trial's fresh runtime still in its gate run (or
// load) at the stop is retired once that ends, after the gateway's close began.
import type { MetricAttributes, MetricsSink } from '../../types.ts'
import type { SharedResource } from '../types.ts'
import { collectSetAside } from './pool-metrics.ts'
import type { OnnxPool } from './pool.ts'

/** Its key among the gateway's shared resources. */
export const RETIRED_POOLS = 'onnx-retired-pools'

export class RetiredPools implements SharedResource {
  /** Dedicated pools made and not retired yet: their executor closes them (retire) in time. */
  private readonly serving = new Set<OnnxPool>()
  /** Pools being closed, by the model they served, until their last thread has exited. */
  private readonly pools = new Map<OnnxPool, string>()
  /** Set once close() began: resolves it once no pool is left, serving or retired. */
  private emptied: (() => void) | undefined
  private closing: Promise<void> | undefined

  /** A model's dedicated pool, just made: the gateway's close waits for its retirement and close. */
  made(pool: OnnxPool): void {
    this.serving.add(pool)
  }

  /**
   * Closes `model`'s dedicated pool: resolves once its workers have exited but for those set
   * aside as stuck (OnnxPool.closeLeavingStuck), which are kept here until they exit.
   */
  async retire(model: string, pool: OnnxPool): Promise<void> {
    this.serving.delete(pool)
    this.pools.set(pool, model)
    // A failure is closeLeavingStuck's to report (the same close).
    const forget = (): void => {
      this.pools.delete(pool)
      this.check()
    }
    void pool.close().then(forget, forget)
    await pool.closeLeavingStuck()
  }

  /** The gateway is stopping: the dedicated pools still serving refuse loads not begun (a trial's), as the shared pool does. */
  beginClose(): void {
    for (const pool of this.serving) pool.beginClose()
  }

  /**
   * Resolves once every dedicated pool has been retired and its threads have exited, those
   * retired after this began included (the caller bounds the wait: serve, by its grace).
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => (this.emptied = resolve))
    this.check()
    return this.closing
  }

  /** Is a thread of a dedicated pool (serving or retired) inside a run, or set aside as stuck in one? */
  inRun(): boolean {
    for (const pool of this.serving) if (pool.inRun()) return true
    for (const pool of this.pools.keys()) if (pool.inRun()) return true
    return false
  }

  collect(out: MetricsSink): void {
    if (this.pools.size === 0) return
    const byModel = new Map<string, number>()
    for (const [pool, model] of this.pools) byModel.set(model, (byModel.get(model) ?? 0) + pool.stats().setAside)
    const points: [MetricAttributes, number][] = []
    for (const [model, setAside] of byModel) if (setAside > 0) points.push([{ model, retired: 'true' }, setAside])
    if (points.length) collectSetAside(out, points)
  }

  private check(): void {
    if (this.serving.size === 0 && this.pools.size === 0) this.emptied?.()
  }
}
