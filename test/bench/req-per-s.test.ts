// A req/s cell may only claim a rate its own row sustained.
import { describe, expect, it } from 'vitest'
import { Rows } from '../../bench/lib/scenario.ts'
import { renderMarkdown } from '../../bench/report/markdown.ts'
import { healthzMetrics } from '../../bench/scenarios/overhead.ts'
import { pairedMetrics } from '../../bench/scenarios/remote.ts'
import { benchOf, closedRun, scenarioOf } from './runs.ts'

describe('req/s cells', () => {
  it('paired rows carry no req/s: their targets took turns over one shared run', () => {
    // Two targets taking turns over a 30-s run, 1,500 answers each: neither sustained 50 req/s.
    const direct = closedRun(1500, 0, 30)
    const via = closedRun(1500, 0, 30)
    const rows = new Rows()
    rows.add('MLServer direct', '', direct, pairedMetrics(direct))
    rows.add('via specserve', '', via, pairedMetrics(via, direct))
    rows.add('closed loop', '', closedRun(30_000), { rps: 3000 })
    const [d, v, c] = rows.variants()
    expect(d!.metrics.rps ?? null).toBeNull()
    expect(v!.metrics.rps ?? null).toBeNull()
    expect(v!.metrics.p50_added?.median).toBe(0)
    expect(c!.metrics.rps?.median).toBe(3000)
    const md = renderMarkdown(benchOf([scenarioOf({ id: 'remote', title: '8. Remote', variants: rows.variants() })]))
    expect(md).toContain('| req/s (2xx) | p50 ms |')
    expect(md).toMatch(/\| MLServer direct \| – \| 2\.00 \|/)
  })

  it("the /healthz row does not show the predict route's rate as its req/s", () => {
    const health = closedRun(50, 0, 1)
    expect(healthzMetrics(health)).not.toHaveProperty('rps')
    expect(healthzMetrics(health).healthz_p99).toBe(2)
  })
})
