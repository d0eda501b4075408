// Batching for a model pinned to the event loop: its runs that arrive in one turn go to
// onnxruntime as one session.run on their inputs stacked along the first dimension (batch.ts),
// and each request gets its own rows back. For a model of a few microseconds most of a run
// is onnxruntime's fixed cost per call, which a stacked run pays once. Nothing waits for a
// batch here (the event loop holds no request back: max_queue_delay_ms is refused for an
// inline model); a batch is whatever arrived together.
import type { Tensor, TensorMap } from '../../tensor/index.ts'
import { fromOrtTensor } from '../../tensor/ort.ts'
import { BATCH_ROWS } from '../types.ts'
import { quantileOf } from './run-times.ts'
import { BatchTimes, countRun, rowsOf, stack, stackable, unstack, type BatchFigures } from './batch.ts'
import type { Job } from './inline-queue.ts'
import type { SyncThreadSession } from './session.ts'

/** Runs that go to onnxruntime together. */
export interface Group {
  readonly jobs: Job[]
  /** Each job's rows, in order. */
  readonly rowsEach: number[]
  rows: number
}

/** A batching inline model's runs of this turn, and its batches' figures (the same ones worker batching shows). */
export class InlineBatches implements BatchFigures {
  readonly maxBatch: number
  /** Run time by batch size, seeded with the warm-up's single-row median. */
  readonly batchTimes = new BatchTimes()
  /** Session runs, batches among them (two requests or more) and the requests those carried. */
  runs = 0
  batches = 0
  batchedRequests = 0
  private gathered: Job[] = []

  constructor(maxBatch: number, warmRunsMs: readonly number[]) {
    this.maxBatch = maxBatch
    if (warmRunsMs.length) this.batchTimes.seed(1, quantileOf(warmRunsMs, 0.5))
  }

  /** Adds a run to this turn's; returns how many are gathered (1: the turn's callback is to be scheduled). */
  gather(job: Job): number {
    return this.gathered.push(job)
  }

  /** This turn's runs: those whose request is decided (to drop), and the rest in order, in stackable groups of at most maxBatch rows. */
  take(): { dropped: Job[]; groups: Group[] } {
    const jobs = this.gathered
    this.gathered = []
    const dropped: Job[] = []
    const groups: Group[] = []
    let group: Group | undefined
    for (const job of jobs) {
      if (job.ctx.over) {
        dropped.push(job)
        continue
      }
      const rows = rowsOf(job.inputs)
      if (group !== undefined && group.rows + rows <= this.maxBatch && stackable(group.jobs[0]!.inputs, job.inputs)) {
        group.jobs.push(job)
        group.rowsEach.push(rows)
        group.rows += rows
      } else groups.push((group = { jobs: [job], rowsEach: [rows], rows }))
    }
    return { dropped, groups }
  }

  /** A run answered (`ms`: its session.run, stacked when it held two requests or more). */
  observe(rows: number, requests: number, ms: number): void {
    countRun(this, rows, requests, ms)
  }
}

/**
 * Runs a group of two jobs or more as one stacked run and answers each with its rows (the
 * outputs carry BATCH_ROWS, the batch's rows, for the annotations). Returns the
 * session.run's time, or -1 when the run failed, no job answered: one request's input can
 * fail a stacked run, so the caller runs each alone.
 */
export function runStacked(session: SyncThreadSession, group: Group): number {
  const { jobs } = group
  let parts: TensorMap[]
  let ms: number
  try {
    const feeds = stack(jobs.map((j) => j.inputs), group.rows)
    const started = performance.now()
    const results = session.run(feeds)
    ms = performance.now() - started
    const outputs: Record<string, Tensor> = {}
    for (const name in results) outputs[name] = fromOrtTensor(name, results[name]!)
    parts = unstack(outputs, group.rowsEach)
  } catch {
    return -1
  }
  for (let i = 0; i < jobs.length; i++) {
    const outputs = parts[i] as Record<string | symbol, unknown>
    outputs[BATCH_ROWS] = group.rows
    jobs[i]!.model.ran++
    jobs[i]!.resolve(outputs as TensorMap)
  }
  return ms
}
