// A worker pool's metrics (docs/operations.md): the shared pool's without a label, a model's
// dedicated workers' with its `model`, and the stuck threads of a model's dedicated workers
// that were closed with `model` and `retired="true"` (retired-pools.ts).
import type { MetricAttributes, MetricsSink } from '../../types.ts'

export interface PoolStats {
  readonly workers: number
  readonly busy: number
  /** Jobs waiting: on the main thread, or inside a worker behind its run or a load (queue-depth.ts). */
  readonly queued: number
  readonly nice: number
  /** Workers started again after a crash. */
  readonly restarts: number
  /** Workers set aside as stuck, ever; and those whose run still goes on. */
  readonly stuck: number
  readonly setAside: number
}

export function collectPool(out: MetricsSink, pool: MetricAttributes, stats: PoolStats): void {
  const { workers, busy, queued, nice, restarts, stuck, setAside } = stats
  out.gauge('specserve_onnx_worker_nice', 'Nice steps the inference workers run below the event loop (executors.onnx_worker_nice; 0 if the OS refused).', [[pool, nice]])
  out.gauge('specserve_onnx_workers', 'Inference worker threads (with `model`: that model\'s dedicated_workers).', [[pool, workers]])
  out.gauge('specserve_onnx_workers_busy', 'Inference workers running a job now.', [[pool, busy]])
  out.gauge('specserve_onnx_queue_depth', 'Inference jobs waiting to run: for a worker, or inside one behind its run or a model load (the limit is executors.onnx_queue; 256 for a model\'s dedicated workers).', [[pool, queued]])
  out.counter('specserve_onnx_worker_restarts', 'Inference workers started again after a crash (the requests one held failed MODEL_FAILED).', [[pool, restarts]])
  out.counter('specserve_onnx_workers_stuck', 'Inference workers set aside as stuck in a run far past its deadline, each replaced unless the pool was closing (the requests one held failed MODEL_FAILED).', [[pool, stuck]])
  collectSetAside(out, [[pool, setAside]])
}

export function collectSetAside(out: MetricsSink, points: readonly (readonly [MetricAttributes, number])[]): void {
  out.gauge('specserve_onnx_workers_set_aside', 'Inference workers set aside as stuck whose run still goes on (each holds a core until it ends; with `retired`, those of a model\'s dedicated workers that were closed).', points)
}
