// What a closed-loop load client counts, and the LoadResult it makes of it (shared by every
// load client but ghz).
import { Samples } from './stats.ts'
import type { LoadResult } from './types.ts'

export class Tally {
  readonly latency = new Samples()
  readonly errorLatency = new Samples()
  readonly statuses: Record<string, number> = {}
  errors = 0
}

export function closedLoopResult(tool: string, spec: { readonly durationS: number; readonly warmupS: number }, tally: Tally, elapsedS: number, connections = 1): LoadResult {
  const answered = Object.values(tally.statuses).reduce((a, b) => a + b, 0)
  return {
    tool,
    loop: 'closed',
    connections,
    durationS: spec.durationS,
    warmupS: spec.warmupS,
    offeredRate: null,
    sentRate: (answered + tally.errors) / elapsedS,
    throughput: tally.latency.length / elapsedS,
    requests: answered + tally.errors,
    statuses: tally.statuses,
    errors: tally.errors,
    latency: tally.latency.percentiles(),
    errorLatency: tally.errorLatency.percentiles(),
  }
}
