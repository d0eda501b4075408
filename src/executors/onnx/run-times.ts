// Recent inference times of one model: a ring of the last samples and their quantiles,
// computed at most once per ring's worth of samples (no allocation per sample).
const SIZE = 128

/** The q-quantile (0..1) of a list of samples, by the same index rule as RunTimes; Infinity for none. */
export function quantileOf(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Infinity
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

export class RunTimes {
  private readonly ring = new Float64Array(SIZE)
  private readonly sorted = new Float64Array(SIZE)
  private n = 0
  private dirty = false

  get count(): number {
    return this.n
  }

  add(ms: number): void {
    this.ring[this.n++ % SIZE] = ms
    this.dirty = true
  }

  addAll(samples: readonly number[]): void {
    for (const ms of samples) this.add(ms)
  }

  /** The samples in the ring, in ring order: a copy. */
  samples(): number[] {
    return Array.from(this.ring.subarray(0, Math.min(this.n, SIZE)))
  }

  /** The q-quantile (0..1) of the samples in the ring; NaN when there are none. */
  quantile(q: number): number {
    const size = Math.min(this.n, SIZE)
    if (size === 0) return Number.NaN
    if (this.dirty) {
      this.sorted.set(this.ring)
      this.sorted.subarray(0, size).sort()
      this.dirty = false
    }
    return this.sorted[Math.min(size - 1, Math.floor(q * size))] as number
  }
}
