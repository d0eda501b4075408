// The bench's verdicts, fed synthetic results: a target may say "met" only when the
// requests and swaps it judges succeeded, in every repetition where it allows no failure.
import { describe, expect, it } from 'vitest'
import { Rows, target } from '../../bench/lib/scenario.ts'
import { summarize } from '../../bench/lib/stats.ts'
import type { SliceActionResults } from '../../bench/lib/types.ts'
import { renderMarkdown } from '../../bench/report/markdown.ts'
import { swapTargets, swappingMetrics } from '../../bench/scenarios/swap.ts'
import { benchOf, closedRun, scenarioOf, times } from './runs.ts'

const uploads = (okMs: number[], failed: string[] = []): SliceActionResults => ({ okMs, failed, outlasted: 0 })

/** The swap scenario's targets, one entry per repetition: its uploads' answers and how many predicts failed. */
function swapVerdicts(reps: readonly { actions: SliceActionResults; failedPredicts?: number }[]) {
  const rows = new Rows()
  for (const { actions, failedPredicts = 0 } of reps) {
    const swapping = closedRun(20_000 - failedPredicts, failedPredicts)
    rows.add('swapping', '', swapping, swappingMetrics(closedRun(20_000), swapping, actions))
  }
  return swapTargets(rows)
}

describe('swap targets', () => {
  it('are not met when every upload was refused (nothing was ever swapped in)', () => {
    const refused = uploads([], ['2: answered 422, not 201: VALIDATION_FAILED', '3: answered 422, not 201: VALIDATION_FAILED'])
    const targets = swapVerdicts(times(3, { actions: refused }))
    expect(targets).toHaveLength(2)
    for (const t of targets) {
      expect(t.value).toBeNull()
      expect(t.met).not.toBe(true)
      expect(t.why).toMatch(/6 of 6 uploads were not swapped in/)
    }
  })

  it('are not met when one upload of nine was refused', () => {
    const targets = swapVerdicts([{ actions: uploads([150, 160, 170]) }, { actions: uploads([150, 160], ['5: not answered: fetch failed']) }, { actions: uploads([150, 160, 170]) }])
    expect(targets.map((t) => t.met)).toEqual([null, null])
  })

  it('"no failed request" is missed when one repetition of three had failed predicts', () => {
    const targets = swapVerdicts([{ actions: uploads([150]) }, { actions: uploads([150]), failedPredicts: 40 }, { actions: uploads([150]) }])
    expect(targets.find((t) => t.metric === 'failed_requests')).toMatchObject({ value: 40, met: false, statistic: 'worst' })
  })

  it('are met when every upload swapped in and no predict failed', () => {
    expect(swapVerdicts(times(3, { actions: uploads([150, 160]) })).map((t) => t.met)).toEqual([true, true])
  })
})

describe('zero-threshold targets', () => {
  it('are judged on the worst repetition, not the median: failures [0, 40, 0] miss "no failed request"', () => {
    const t = target('no failed request', 'failed_requests', summarize([0, 40, 0]), '<=', 0, () => 'failures')
    expect(t).toMatchObject({ value: 40, met: false, statistic: 'worst', why: 'failures' })
  })

  it('other targets stay on the median', () => {
    const t = target('misses < 0.1%', 'miss', summarize([0, 0.5, 0]), '<=', 0.001, () => 'late')
    expect(t).toMatchObject({ value: 0, met: true })
    expect(t.statistic).toBeUndefined()
  })
})

describe('the report', () => {
  it('says which repetition a worst-case target was judged on', () => {
    const t = target('no failed request while versions are swapped in', 'failed_requests', summarize([0, 40, 0]), '<=', 0, () => 'some predicts failed.')
    expect(renderMarkdown(benchOf([scenarioOf({ targets: [t] })]))).toContain(
      '| 11. Models as data | no failed request while versions are swapped in | 40 (worst repetition) | **missed** |',
    )
  })

  it('names the targets it could not measure in the closing note, with the reason', () => {
    const md = renderMarkdown(benchOf([scenarioOf({ targets: swapVerdicts(times(3, { actions: uploads([], ['2: answered 422, not 201']) })) })]))
    expect(md).toContain('| 11. Models as data | no failed request while versions are swapped in | – | not measured |')
    const closing = md.slice(md.indexOf('## Closing note'))
    expect(closing).toContain('2 could not be measured')
    expect(closing).toMatch(/no failed request while versions are swapped in\*\*: not measured\. 3 of 3 uploads were not swapped in/)
  })
})
