// Dynamic batching for models in the workers: requests for the same model that wait
// together are run as one session.run on their inputs stacked along the first (batch)
// dimension, and the outputs are cut back into each request's rows. How long a batch may
// wait for more requests is bounded twice: by `max_queue_delay_ms`, and by the earliest
// deadline in it, given the time this model has been measured to take for that many rows.
import { roundMs } from '../../starter/stats.ts'
import type { Tensor, TensorData, TensorMap, TensorSpec } from '../../tensor/index.ts'

export interface BatchSettings {
  /** Most rows one batched run may carry (a request with more runs alone). */
  readonly maxBatch: number
  /** Longest a request waits for others to join its batch. */
  readonly maxDelayMs: number
}

/** Batching stacks requests along the first dimension and cuts every output back apart along it: each must be dynamic. */
export function checkBatchDimension(model: { readonly inputs: readonly TensorSpec[]; readonly outputs: readonly TensorSpec[] }): void {
  // A tensor of any rank (shape []) has no first dimension to stack along either.
  const fixed = [...model.inputs, ...model.outputs].find((t) => t.shape[0] !== -1)
  if (fixed) throw new Error(`batching needs a dynamic first (batch) dimension on every input and output: "${fixed.name}" has ${fixed.anyRank ? 'no declared shape (any rank)' : `shape [${fixed.shape.join(', ')}]`}`)
}

/** Rows of a request: the first dimension of its first input (1 for a scalar). */
export function rowsOf(inputs: TensorMap): number {
  for (const name in inputs) return inputs[name]!.shape[0] ?? 1
  return 1
}

/**
 * Can `b` be stacked under `a`: the same inputs, datatypes and dimensions but the first, and in
 * each request every input with the same rows? A request whose inputs disagree on their rows
 * would shift every row after it in the stacked inputs (one request's values read as
 * another's), and its outputs could not be cut back: it runs alone, as it would unbatched.
 */
export function stackable(a: TensorMap, b: TensorMap): boolean {
  const rowsA = rowsOf(a)
  const rowsB = rowsOf(b)
  for (const name in a) {
    const x = a[name]!
    const y = b[name]
    if (!y || y.datatype !== x.datatype || y.shape.length !== x.shape.length || x.shape.length === 0) return false
    if (x.shape[0] !== rowsA || y.shape[0] !== rowsB) return false
    for (let d = 1; d < x.shape.length; d++) if (x.shape[d] !== y.shape[d]) return false
  }
  for (const name in b) if (!(name in a)) return false
  return true
}

/** The inputs stacked along the first dimension. */
export function stack(parts: readonly TensorMap[], rows: number): TensorMap {
  const first = parts[0]!
  const out: Record<string, Tensor> = {}
  for (const name in first) {
    const head = first[name]!
    const shape = [rows, ...head.shape.slice(1)]
    let data: TensorData
    if (Array.isArray(head.data)) data = parts.flatMap((p) => p[name]!.data as string[])
    else {
      const Ctor = head.data.constructor as new (n: number) => Exclude<TensorData, string[]>
      const total = parts.reduce((n, p) => n + p[name]!.data.length, 0)
      const joined = new Ctor(total)
      let at = 0
      for (const p of parts) {
        const d = p[name]!.data as Float32Array
        ;(joined as Float32Array).set(d, at)
        at += d.length
      }
      data = joined
    }
    out[name] = { datatype: head.datatype, shape, data }
  }
  return out
}

/**
 * The outputs cut back into each request's rows. Every output must have the batch as its
 * first dimension: anything else (a count of detections, a fixed table) cannot be told
 * apart per request, and handing it whole to each would leak one request's answer to the others.
 */
export function unstack(outputs: TensorMap, rows: readonly number[]): TensorMap[] {
  const total = rows.reduce((a, b) => a + b, 0)
  const parts: Record<string, Tensor>[] = rows.map(() => ({}))
  for (const name in outputs) {
    const t = outputs[name]!
    if (t.shape[0] !== total) throw new Error(`batched run: output "${name}" has shape [${t.shape.join(', ')}], not ${total} rows first`)
    const width = total === 0 ? 0 : t.data.length / total
    let at = 0
    rows.forEach((r, i) => {
      const from = at * width
      const to = (at + r) * width
      const data = Array.isArray(t.data) ? t.data.slice(from, to) : (t.data as Float32Array).subarray(from, to)
      parts[i]![name] = { datatype: t.datatype, shape: [r, ...t.shape.slice(1)], data }
      at += r
    })
  }
  return parts
}

/** What a batching model shows of its runs, wherever its batches form (a worker lane, or the event loop for a model pinned inline). */
export interface BatchFigures {
  /** Runs answered, batches among them (two requests or more) and the requests those carried. */
  runs: number
  batches: number
  batchedRequests: number
  /** Run time by batch size. */
  readonly batchTimes: BatchTimes
}

/** Counts one answered run of `requests` requests and `rows` rows that took `ms`. */
export function countRun(figures: BatchFigures, rows: number, requests: number, ms: number): void {
  figures.runs++
  figures.batchTimes.observe(rows, ms)
  if (requests < 2) return
  figures.batches++
  figures.batchedRequests += requests
}

/** Buckets of batch sizes: 1, 2, 3-4, 5-8, … (log2). */
const BUCKETS = 16
const bucket = (rows: number): number => Math.min(BUCKETS - 1, Math.ceil(Math.log2(Math.max(1, rows))))
const bucketName = (b: number): string => (b < 2 ? String(b + 1) : `${2 ** (b - 1) + 1}-${2 ** b}`)

/** Measured run time by batch size (a smoothed figure per size bucket), and how many runs each size saw. */
export class BatchTimes {
  private readonly ms = new Float64Array(BUCKETS)
  private readonly runs = new Float64Array(BUCKETS)

  observe(rows: number, ms: number): void {
    const b = bucket(rows)
    this.ms[b] = this.ms[b] === 0 ? ms : this.ms[b]! * 0.8 + ms * 0.2
    this.runs[b]!++
  }

  /** A first figure before any real run (the warm-up's): counted as no run. */
  seed(rows: number, ms: number): void {
    if (Number.isFinite(ms) && ms > 0) this.ms[bucket(rows)] = ms
  }

  /** The expected time for `rows` rows: its bucket's figure, else the nearest smaller one scaled (a guess on the safe side). */
  estimate(rows: number): number {
    const b = bucket(rows)
    if (this.ms[b]! > 0) return this.ms[b]!
    for (let k = b - 1; k >= 0; k--) if (this.ms[k]! > 0) return this.ms[k]! * 2 ** (b - k)
    return 0
  }

  /** Runs and smoothed run time per batch-size bucket that has seen a run ("1", "2", "3-4", …). */
  describe(): Record<string, { runs: number; ms: number }> {
    const out: Record<string, { runs: number; ms: number }> = {}
    for (let b = 0; b < BUCKETS; b++) if (this.runs[b]! > 0) out[bucketName(b)] = { runs: this.runs[b]!, ms: roundMs(this.ms[b]!) }
    return out
  }
}
