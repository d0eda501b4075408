// Per-model and per-ensemble counters the seeds call "queryable state": cheap to update on
// the hot path (a few additions and one binary search), read by GET /v1/models/{name},
// gRPC GetModel and the metrics endpoint (src/telemetry reads them at scrape time, so
// metrics cost nothing per request beyond these counters).
import type { ModelStatus } from '../types.ts'
import type { ShadowCounts } from './shadow.ts'

/** Prometheus-style bucket bounds (ms) exported by /metrics; each is split finer for percentiles. */
export const LATENCY_BOUNDS_MS = [0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000] as const
const SPLIT = 16

/** Fine bounds: each coarse interval split in SPLIT equal parts, so p99 is within a few % of the truth. */
const FINE_BOUNDS: Float64Array = (() => {
  const out: number[] = []
  let low = 0
  for (const high of LATENCY_BOUNDS_MS) {
    for (let i = 1; i <= SPLIT; i++) out.push(low + ((high - low) * i) / SPLIT)
    low = high
  }
  return Float64Array.from(out)
})()

/**
 * A fixed-bucket latency histogram: one Float64Array, no allocation per sample. The last
 * slot counts samples over the largest bound.
 */
export class LatencyHistogram {
  readonly counts = new Float64Array(FINE_BOUNDS.length + 1)
  count = 0
  sum = 0
  min = Infinity
  max = 0

  record(ms: number): void {
    let lo = 0
    let hi = FINE_BOUNDS.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((FINE_BOUNDS[mid] as number) < ms) lo = mid + 1
      else hi = mid
    }
    this.counts[lo]!++
    this.count++
    this.sum += ms
    if (ms < this.min) this.min = ms
    if (ms > this.max) this.max = ms
  }

  /** The q-quantile (0..1), linearly interpolated inside its bucket and clamped to [min, max]. */
  quantile(q: number): number | null {
    if (this.count === 0) return null
    const rank = q * this.count
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i] as number
      if (c === 0 || seen + c < rank) {
        seen += c
        continue
      }
      const low = i === 0 ? 0 : (FINE_BOUNDS[i - 1] as number)
      const high = i < FINE_BOUNDS.length ? (FINE_BOUNDS[i] as number) : this.max
      const at = low + ((high - low) * (rank - seen)) / c
      return Math.min(this.max, Math.max(this.min, at))
    }
    return this.max
  }

  /** Cumulative-free counts per exported bound (LATENCY_BOUNDS_MS), plus the overflow slot. */
  coarseCounts(): number[] {
    const out = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0)
    for (let i = 0; i < this.counts.length; i++) out[Math.floor(i / SPLIT)]! += this.counts[i] as number
    return out
  }
}

/**
 * The recent p95 of a model's run times for member selection: a ring of the last 64 runs
 * (answers in time, and runs cut by the deadline at what they had taken, so a straggler that
 * never answers still shows as slow), the p95 recomputed every 16 runs. No allocation.
 *
 * A member skipped for its p95 only runs as a probe (selection.ts), so new runs alone would
 * take thousands of requests to push a passing stall's slow runs out: a probe that answers in
 * time also takes the place of the slowest run kept (replaceSlowest), and p95 is worked out
 * again at once.
 */
export class LiveLatency {
  private readonly ring = new Float64Array(64)
  private readonly sorted = new Float64Array(64)
  private n = 0
  /** Runs counted when p95 was last worked out. */
  private sortedAt = 0
  private lastP95 = Number.NaN
  private lastFastest = Number.NaN
  /** A run was replaced: p95 is worked out again at the next read. */
  private replaced = false

  get count(): number {
    return this.n
  }

  /** One store per run: the sort is left to whoever reads p95 (member selection only). */
  add(ms: number): void {
    this.ring[this.n++ % this.ring.length] = ms
  }

  /** The slowest run kept gives its place to `ms`, if slower (a probe's answer in time: O(64), once per probe). */
  replaceSlowest(ms: number): void {
    const size = Math.min(this.n, this.ring.length)
    let at = 0
    for (let i = 1; i < size; i++) if (this.ring[i]! > this.ring[at]!) at = i
    if (size === 0 || !(this.ring[at]! > ms)) return
    this.ring[at] = ms
    this.replaced = true
  }

  /** The p95 of the recent runs; NaN until 16 are in, worked out again every 16 runs. */
  get p95(): number {
    this.refresh()
    return this.lastP95
  }

  /** The fastest of the runs the p95 is of (worked out with it); NaN until 16 are in. */
  get fastest(): number {
    this.refresh()
    return this.lastFastest
  }

  /** Sorts the runs again when 16 more are in, or one was replaced. */
  private refresh(): void {
    if (this.n < 16 || (!this.replaced && this.n - this.sortedAt < 16)) return
    this.replaced = false
    this.sortedAt = this.n - (this.n % 16)
    const size = Math.min(this.n, this.ring.length)
    this.sorted.set(this.ring)
    // Once the ring is full (64 runs) the whole array sorts in place: no view is made.
    const window = size === this.ring.length ? this.sorted.sort() : this.sorted.subarray(0, size).sort()
    this.lastP95 = window[Math.min(size - 1, Math.floor(0.95 * size))]!
    this.lastFastest = window[0]!
  }
}

/** Counters of one version of a model. */
export interface VersionStats {
  readonly version: string
  readonly stats: ModelStats
}

export class ModelStats {
  readonly since = new Date().toISOString()
  count = 0
  ok = 0
  errors = 0
  timeouts = 0
  cancelled = 0
  skipped = 0
  wins = 0
  late = 0
  /** Durations of successful runs. */
  readonly latency = new LatencyHistogram()
  /** Recent run times (answers and runs cut at the deadline): what member selection reads. */
  readonly live: LiveLatency
  /** A canary rollout's other version: its own counters, made on its first run. */
  private canary: VersionStats | undefined

  /** `live` is shared by a canary's counters: member selection judges the member, whichever version ran. */
  constructor(live: LiveLatency = new LiveLatency()) {
    this.live = live
  }

  /**
   * The counters of another version of this model (a canary's runs, annotated with its
   * version), so its calls are not counted as the serving version's. One slot: a rollout
   * has one canary; a new canary version starts counters of its own.
   */
  ofVersion(version: string): ModelStats {
    if (this.canary?.version !== version) this.canary = { version, stats: new ModelStats(this.live) }
    return this.canary.stats
  }

  /** The other version's counters, once one of its runs was recorded (for metrics). */
  get otherVersion(): VersionStats | undefined {
    return this.canary
  }

  /** One model outcome of one request, as annotated. */
  record(status: ModelStatus, latencyMs: number, used: boolean): void {
    this.count++
    if (used) this.wins++
    switch (status) {
      case 'ok':
        this.ok++
        this.latency.record(latencyMs)
        this.live.add(latencyMs)
        return
      case 'error':
        this.errors++
        return
      case 'timeout':
        this.timeouts++
        this.live.add(latencyMs)
        return
      case 'cancelled':
        this.cancelled++
        return
      case 'skipped':
        this.skipped++
    }
  }

  toJSON(): Record<string, unknown> {
    const h = this.latency
    return {
      count: this.count,
      ok: this.ok,
      errors: this.errors,
      timeouts: this.timeouts,
      cancelled: this.cancelled,
      skipped: this.skipped,
      wins: this.wins,
      late: this.late,
      duration_ms: h.count
        ? { mean: roundMs(h.sum / h.count), min: roundMs(h.min), max: roundMs(h.max), p99: roundMs(h.quantile(0.99) as number) }
        : { mean: null, min: null, max: null, p99: null },
      since: this.since,
    }
  }
}

/** Budget used (elapsed / budget) bucket bounds: 1 or more is a deadline miss. */
export const BUDGET_FRACTION_BOUNDS = [0.1, 0.25, 0.5, 0.75, 0.9, 1] as const

/**
 * Per-ensemble request counters (its shadows' too). Kept by ensemble name across hot reloads
 * while the ensemble stays; one a reload removes and a later one adds again starts at 0.
 */
export class EnsembleStats {
  /** When these counters started (their start time over OTLP: a reset has a new one). */
  readonly since = new Date().toISOString()
  /** Requests by outcome: "ok" or the request error code (DEADLINE_EXCEEDED, ALL_MODELS_FAILED, ...). */
  readonly outcomes = new Map<string, number>()
  readonly latency = new LatencyHistogram()
  /** Decided by the deadline timer rather than by the collector (whatever the answer). */
  deadlineHits = 0
  readonly budgetUsed = new Float64Array(BUDGET_FRACTION_BOUNDS.length + 1)
  budgetUsedSum = 0
  /** Members started (not annotated `skipped`), summed over requests (over the request count: members started per request). */
  membersStarted = 0
  /** Shadow members' runs and agreement, by model name. */
  readonly shadows = new Map<string, ShadowCounts>()

  record(outcome: string, elapsedMs: number, budgetMs: number, atDeadline: boolean, membersStarted: number): void {
    this.count(outcome)
    this.membersStarted += membersStarted
    this.latency.record(elapsedMs)
    if (atDeadline) this.deadlineHits++
    const used = elapsedMs / budgetMs
    this.budgetUsedSum += used
    let i = 0
    while (i < BUDGET_FRACTION_BOUNDS.length && used > (BUDGET_FRACTION_BOUNDS[i] as number)) i++
    this.budgetUsed[i]!++
  }

  /** A request that never ran (shed at admission): counted, no latency. */
  count(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1)
  }
}

/** Milliseconds as annotations and stats report them: to the microsecond. */
export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000
