// The eval report's plot: one line per target in every panel, and one legend entry each. A
// member may have its ensemble's name (an ensemble named after its preferred model): it is a
// target of its own, not folded into the ensemble's line.
import { describe, expect, it } from 'vitest'
import type { EnsembleReport, TargetResult } from '../../src/eval/run.ts'
import { ensembleSvg } from '../../src/eval/svg.ts'

const result = (target: string, kind: TargetResult['kind'], budget: number, score: number): TargetResult => ({
  target, kind, budget_ms: budget, score, answered: 45, misses: 0, failed: 0, abstained: 0, non_finite: 0, p50_ms: 0.1, p99_ms: 0.5, members_started: kind === 'ensemble' ? 2 : 1, members: kind === 'ensemble' ? 2 : 1,
})

/** Ensemble wine-tree, whose members are wine-tree and wine-logreg. */
const sameName: EnsembleReport = {
  ensemble: 'wine-tree', strategy: 'deadline-fallback', task: 'classification', metric: 'accuracy', models: ['wine-tree', 'wine-logreg'],
  results: [5, 50].flatMap((b) => [result('wine-tree', 'ensemble', b, 0.956), result('wine-tree', 'member', b, 0.95), result('wine-logreg', 'member', b, 1)]),
}

describe('ensembleSvg', () => {
  it('draws a member named as its ensemble as a target of its own: in every panel and in the legend', () => {
    const svg = ensembleSvg(sameName)
    const legend = [...svg.matchAll(/<text x="\d+" y="\d+">([^<]*)<\/text>/g)].map((m) => m[1])
    expect(legend).toEqual(['wine-tree (ensemble)', 'wine-tree', 'wine-logreg'])
    // Five panels, three lines each; the ensemble's line is the thick one, once per panel.
    expect(svg.match(/<polyline /g)).toHaveLength(15)
    expect(svg.match(/<polyline [^>]*stroke-width="3"/g)).toHaveLength(5)
    // The accuracy panel's three lines: the member's 95% is plotted, not the ensemble's 95.6% a second time.
    const lines = [...svg.matchAll(/<polyline points="([^"]+)"/g)].slice(0, 3).map((m) => m[1])
    expect(new Set(lines).size).toBe(3)
  })
})
