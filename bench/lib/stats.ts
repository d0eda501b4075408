// Percentiles of raw samples and the median/min/max summary of repeated runs.

export interface Percentiles {
  readonly count: number
  readonly mean: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

/** Nearest-rank percentiles of raw samples (sorts the array in place); null when there are none. */
export function percentiles(samples: Float64Array | number[]): Percentiles | null {
  const n = samples.length
  if (n === 0) return null
  const sorted = samples instanceof Float64Array ? samples.sort() : Float64Array.from(samples).sort()
  let sum = 0
  for (let i = 0; i < n; i++) sum += sorted[i] as number
  const at = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number
  return { count: n, mean: sum / n, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: sorted[n - 1] as number }
}

/** A metric measured once per repetition: every value kept, the median reported with its range. */
export interface Summary {
  readonly values: number[]
  readonly median: number
  readonly min: number
  readonly max: number
}

export function summarize(values: readonly number[]): Summary | null {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return null
  const sorted = [...finite].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
  return { values: [...finite], median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number }
}

/** Grows a Float64Array as samples arrive: no per-sample allocation in the load generators. */
export class Samples {
  private data = new Float64Array(4096)
  private size = 0

  push(value: number): void {
    if (this.size === this.data.length) {
      const next = new Float64Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.size++] = value
  }

  get length(): number {
    return this.size
  }

  countAbove(threshold: number): number {
    let n = 0
    for (let i = 0; i < this.size; i++) if ((this.data[i] as number) > threshold) n++
    return n
  }

  percentiles(): Percentiles | null {
    return percentiles(this.data.slice(0, this.size))
  }
}
