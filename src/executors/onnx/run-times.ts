// Recent inference times of one model: a ring of the last samples and their quantiles,
// sorted when asked after new samples came (no allocation per sample), and how many of them
// are over a limit, kept as they come (a quantile against that limit, without a sort).
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
  /** Samples in the ring over `limitMs`, kept as they come and go (quantileWithin). */
  private over = 0
  private readonly limitMs: number

  /** `limitMs`: the run time quantileWithin compares with (none by default). */
  constructor(limitMs = Infinity) {
    this.limitMs = limitMs
  }

  get count(): number {
    return this.n
  }

  add(ms: number): void {
    const at = this.n % SIZE
    if (this.n >= SIZE && this.ring[at]! > this.limitMs) this.over--
    if (ms > this.limitMs) this.over++
    this.ring[at] = ms
    this.n++
    this.dirty = true
  }

  /**
   * Is the q-quantile of the samples in the ring at most the limit given at construction? As
   * quantile(q) <= limitMs, without sorting: from how many samples are over it. False for none.
   */
  quantileWithin(q: number): boolean {
    const size = Math.min(this.n, SIZE)
    return size > 0 && this.over <= size - 1 - Math.min(size - 1, Math.floor(q * size))
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
