// Per-model counters the seeds call "queryable state": cheap to update on the hot path
// (a few additions), read by GET /v1/models/{name} and gRPC GetModel.
import type { ModelStatus } from '../types.ts'

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
  private totalMs = 0
  private minMs = Infinity
  private maxMs = 0

  /** One model outcome of one request, as annotated. */
  record(status: ModelStatus, latencyMs: number, used: boolean): void {
    this.count++
    if (used) this.wins++
    switch (status) {
      case 'ok':
        this.ok++
        this.totalMs += latencyMs
        if (latencyMs < this.minMs) this.minMs = latencyMs
        if (latencyMs > this.maxMs) this.maxMs = latencyMs
        return
      case 'error':
        this.errors++
        return
      case 'timeout':
        this.timeouts++
        return
      case 'cancelled':
        this.cancelled++
        return
      case 'skipped':
        this.skipped++
    }
  }

  toJSON(): Record<string, unknown> {
    const round = (n: number): number => Math.round(n * 1000) / 1000
    return {
      count: this.count,
      ok: this.ok,
      errors: this.errors,
      timeouts: this.timeouts,
      cancelled: this.cancelled,
      skipped: this.skipped,
      wins: this.wins,
      late: this.late,
      duration_ms: this.ok
        ? { mean: round(this.totalMs / this.ok), min: round(this.minMs), max: round(this.maxMs) }
        : { mean: null, min: null, max: null },
      since: this.since,
    }
  }
}
