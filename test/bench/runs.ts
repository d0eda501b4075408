// Synthetic load results and report wrappers for the bench's unit tests.
import { Tally, closedLoopResult } from '../../bench/lib/tally.ts'
import type { BenchResults, LoadResult, ScenarioResult } from '../../bench/lib/types.ts'

export const times = <T>(n: number, item: T): T[] => Array.from({ length: n }, () => item)

/** A closed-loop run with `ok` 2xx answers (2 ms each) and `failed` 500s over `seconds`. */
export function closedRun(ok: number, failed = 0, seconds = 10): LoadResult {
  const tally = new Tally()
  for (let i = 0; i < ok; i++) tally.latency.push(2)
  tally.statuses['200'] = ok
  if (failed) tally.statuses['500'] = failed
  return closedLoopResult('test', { durationS: seconds, warmupS: 0 }, tally, seconds, 32)
}

export const scenarioOf = (fields: Partial<ScenarioResult>): ScenarioResult => ({ id: 'swap', title: '11. Models as data', status: 'ok', variants: [], targets: [], notes: [], ...fields })

export const benchOf = (scenarios: ScenarioResult[]): BenchResults => ({
  quick: true,
  machine: { cores: 2, cpu: 'test', node: 'v24', platform: 'linux', loadAverage: [0, 0, 0], date: '2025-01-01' },
  settings: { repetitions: 3, warmupS: 1, durationS: 5, sliceS: 1, connections: 32 },
  scenarios,
})
