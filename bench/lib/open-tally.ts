// What the open-loop load client (bench/load/open-loop.ts) counts, and the LoadResult it
// makes of it. Kept apart from the client so the miss accounting can be checked without
// a server: a request that was not answered 2xx is a miss however fast it came back,
// or a gateway answering 500 to everything would meet every miss target.
import { Samples } from './stats.ts'
import type { LoadResult, LoadSpec } from './types.ts'

/**
 * Interleaved open loops: the load at the start of each slice that is not measured (its
 * requests finish before the measured part starts), so a target idle while the others ran
 * is not judged on its first requests back.
 */
export const LEAD_IN_S = 0.5

export class OpenTally {
  readonly latency = new Samples()
  readonly sendLatency = new Samples()
  readonly errorLatency = new Samples()
  readonly errorSendLatency = new Samples()
  readonly serverElapsed = new Samples()
  readonly statuses: Record<string, number> = {}
  readonly chosen: Record<string, number> = {}
  /** Connection errors and client timeouts. */
  errors = 0
  /** Misses by the client's clock: later than missAfterMs from the scheduled start, not 2xx, or never answered. */
  late = 0
  /** 2xx answers whose own elapsed_ms is over missAfterMs (the other gateway-clock misses are the non-2xx and the errors). */
  serverLate = 0

  private readonly missAfterMs: number | undefined

  constructor(missAfterMs: number | undefined) {
    this.missAfterMs = missAfterMs
  }

  /**
   * One answer. `latency` is from the scheduled start, `sendLatency` from the moment it was
   * written; `body` is the 2xx body when bodies are read (elapsed_ms, decision.chosen).
   */
  answered(status: number, latency: number, sendLatency: number, body?: string): void {
    const ok = status >= 200 && status < 300
    this.statuses[status] = (this.statuses[status] ?? 0) + 1
    if (this.missAfterMs !== undefined && (!ok || latency > this.missAfterMs)) this.late++
    if (ok) {
      this.latency.push(latency)
      this.sendLatency.push(sendLatency)
      if (body !== undefined) this.readBody(body)
    } else {
      this.errorLatency.push(latency)
      this.errorSendLatency.push(sendLatency)
    }
  }

  /** No answer at all (connection error, client timeout). */
  failed(): void {
    this.errors++
    this.late++
  }

  private readBody(text: string): void {
    const body = JSON.parse(text) as { elapsed_ms?: number; decision?: { chosen?: string | null } }
    if (typeof body.elapsed_ms === 'number') {
      this.serverElapsed.push(body.elapsed_ms)
      if (this.missAfterMs !== undefined && body.elapsed_ms > this.missAfterMs) this.serverLate++
    }
    const chosen = body.decision?.chosen ?? '(none)'
    this.chosen[chosen] = (this.chosen[chosen] ?? 0) + 1
  }
}

/** The run's LoadResult: `sent` requests started over `elapsedS` of the measured phase, every one with an outcome. */
export function openLoopResult(spec: LoadSpec, tally: OpenTally, sent: number, elapsedS: number): LoadResult {
  const answered = Object.values(tally.statuses).reduce((a, b) => a + b, 0)
  const requests = answered + tally.errors
  // Every request that did not get a 2xx is a miss by the gateway's clock too: it gave no answer in time.
  const notOk = requests - tally.latency.length
  return {
    tool: `bench/load/open-loop.ts (undici ${spec.connections} connections)`,
    loop: 'open',
    connections: spec.connections,
    durationS: spec.durationS,
    warmupS: spec.warmupS,
    offeredRate: spec.rate ?? null,
    sentRate: sent / elapsedS,
    throughput: tally.latency.length / spec.durationS,
    requests,
    statuses: tally.statuses,
    errors: tally.errors,
    latency: tally.latency.percentiles(),
    sendLatency: tally.sendLatency.percentiles(),
    errorLatency: tally.errorLatency.percentiles(),
    errorSendLatency: tally.errorSendLatency.percentiles(),
    ...(spec.missAfterMs !== undefined ? { missRate: tally.late / Math.max(1, sent) } : {}),
    ...(spec.readBodies ? { serverElapsed: tally.serverElapsed.percentiles(), chosen: tally.chosen } : {}),
    ...(spec.readBodies && spec.missAfterMs !== undefined ? { serverMissRate: (tally.serverLate + notOk) / Math.max(1, requests) } : {}),
  }
}
