// The open-loop client's miss accounting, fed synthetic answers: a request not answered 2xx
// is a deadline miss however fast it came back, by the client's clock and the gateway's.
import { describe, expect, it } from 'vitest'
import { OpenTally, openLoopResult } from '../../bench/lib/open-tally.ts'
import { Rows } from '../../bench/lib/scenario.ts'
import type { LoadResult } from '../../bench/lib/types.ts'
import { stragglerMetrics, stragglerTargets } from '../../bench/scenarios/stragglers.ts'
import { times } from './runs.ts'

const MISS_AFTER_MS = 22
const spec = { url: 'http://127.0.0.1:1/v1/ensembles/slow-onnx/predict', connections: 8, durationS: 1, warmupS: 0, rate: 200, missAfterMs: MISS_AFTER_MS, readBodies: true }
const okBody = (elapsedMs: number): string => JSON.stringify({ elapsed_ms: elapsedMs, decision: { chosen: 'cancer-logreg' } })

type Answer = [status: number, ms: number, elapsedMs?: number]

/** An open-loop run of `answers` (status, ms from the scheduled start, elapsed_ms of a 2xx body) plus `unanswered` connection errors. */
function openRun(answers: readonly Answer[], unanswered = 0): LoadResult {
  const tally = new OpenTally(MISS_AFTER_MS)
  for (const [status, ms, elapsedMs] of answers) tally.answered(status, ms, ms, elapsedMs === undefined ? undefined : okBody(elapsedMs))
  for (let i = 0; i < unanswered; i++) tally.failed()
  return openLoopResult(spec, tally, answers.length + unanswered, 1)
}

/** The stragglers scenario's verdicts, by metric, for one row measured three times as `run`. */
function stragglerVerdicts(run: LoadResult): Record<string, boolean | null> {
  const reference = openRun(times<Answer>(200, [200, 2, 1]))
  const rows = new Rows()
  for (let rep = 0; rep < 3; rep++) {
    rows.add('no straggler', '', reference, stragglerMetrics(reference, reference))
    rows.add('slow ONNX member', '', run, stragglerMetrics(run, reference))
  }
  return Object.fromEntries(stragglerTargets(rows, ['slow ONNX member']).map((t) => [t.metric, t.met]))
}

describe('open-loop deadline misses', () => {
  it('a gateway answering a fast 500 to every request misses the deadline-miss target', () => {
    const run = openRun(times<Answer>(200, [500, 1]))
    expect(run.missRate).toBe(1)
    expect(run.serverMissRate).toBe(1)
    expect(stragglerVerdicts(run).miss).toBe(false)
  })

  it('504s just inside the budget for half the requests are misses by both clocks', () => {
    const run = openRun([...times<Answer>(100, [200, 2, 1]), ...times<Answer>(100, [504, 19])])
    expect(run.missRate).toBe(0.5)
    expect(run.serverMissRate).toBe(0.5)
    expect(stragglerVerdicts(run).miss).toBe(false)
  })

  it('the gateway-clock miss rate is over every request: late 2xx bodies, non-2xx answers and no answer at all', () => {
    // 7 on time, 1 answered 2xx with elapsed_ms over the bound, 1 answered 500, 1 never answered.
    const run = openRun([...times<Answer>(7, [200, 3, 2]), [200, 30, 25], [500, 1]], 1)
    expect(run.requests).toBe(10)
    expect(run.serverMissRate).toBeCloseTo(0.3)
    expect(run.missRate).toBeCloseTo(0.3)
  })

  it('a gateway answering every request 2xx in time meets it', () => {
    const run = openRun(times<Answer>(200, [200, 3, 2]))
    expect(run.serverMissRate).toBe(0)
    expect(stragglerVerdicts(run)).toEqual({ p999: true, miss: true })
  })
})
