import { describe, expect, it } from 'vitest'
import { EnsembleStats, LATENCY_BOUNDS_MS, LatencyHistogram, LiveLatency, ModelStats } from '../../src/starter/stats.ts'

/** The exact q-quantile of a sorted sample (nearest rank). */
const exact = (sorted: number[], q: number): number => sorted[Math.ceil(q * sorted.length) - 1]!

describe('LatencyHistogram', () => {
  it('estimates p99 within 5% on skewed latencies', () => {
    // A seeded log-normal-ish mix: mostly 1-5 ms, a tail into the hundreds.
    let seed = 42
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    for (const scale of [1, 20, 300]) {
      const h = new LatencyHistogram()
      const values: number[] = []
      for (let i = 0; i < 20_000; i++) {
        const v = scale * Math.exp(random() * 2) * (random() < 0.02 ? 10 : 1)
        values.push(v)
        h.record(v)
      }
      values.sort((a, b) => a - b)
      for (const q of [0.5, 0.9, 0.99]) {
        const truth = exact(values, q)
        expect(Math.abs(h.quantile(q)! - truth) / truth).toBeLessThan(0.05)
      }
      expect(h.count).toBe(20_000)
      expect(h.min).toBe(values[0])
      expect(h.max).toBe(values.at(-1))
    }
  })

  it('is null when empty, exact for one sample, and clamps to the largest seen past the last bound', () => {
    const h = new LatencyHistogram()
    expect(h.quantile(0.99)).toBeNull()
    h.record(3.3)
    expect(h.quantile(0.99)).toBe(3.3)
    h.record(60_000)
    expect(h.quantile(1)).toBe(60_000)
  })

  it('folds into the exported bounds: each sample in the first bucket whose bound is not below it', () => {
    const h = new LatencyHistogram()
    for (const v of [0.1, 0.25, 0.26, 7, 10_000, 20_000]) h.record(v)
    const coarse = h.coarseCounts()
    expect(coarse).toHaveLength(LATENCY_BOUNDS_MS.length + 1)
    const at = (bound: number): number => coarse[LATENCY_BOUNDS_MS.indexOf(bound as never)]!
    expect(at(0.25)).toBe(2) // 0.1 and 0.25 (bounds are inclusive, like Prometheus "le")
    expect(at(0.5)).toBe(1)
    expect(at(10)).toBe(1)
    expect(at(10_000)).toBe(1)
    expect(coarse.at(-1)).toBe(1) // over the last bound
  })
})

describe('ModelStats and EnsembleStats', () => {
  it('reports p99 with the other durations', () => {
    const s = new ModelStats()
    expect((s.toJSON().duration_ms as { p99: null }).p99).toBeNull()
    for (let i = 1; i <= 100; i++) s.record('ok', i, i === 1)
    s.record('timeout', 50, false)
    const json = s.toJSON() as { count: number; wins: number; timeouts: number; duration_ms: { p99: number; mean: number; max: number } }
    expect(json).toMatchObject({ count: 101, wins: 1, timeouts: 1 })
    expect(json.duration_ms.mean).toBe(50.5)
    expect(json.duration_ms.p99).toBeGreaterThan(95)
    expect(json.duration_ms.p99).toBeLessThanOrEqual(100)
  })

  it('counts outcomes, deadline decisions, the budget used and the members started', () => {
    const s = new EnsembleStats()
    s.record('ok', 5, 50, false, 2)
    s.record('ok', 50, 50, true, 3)
    s.record('DEADLINE_EXCEEDED', 51, 50, true, 1)
    expect(Object.fromEntries(s.outcomes)).toEqual({ ok: 2, DEADLINE_EXCEEDED: 1 })
    expect(s.membersStarted).toBe(6)
    expect(s.deadlineHits).toBe(2)
    expect([...s.budgetUsed]).toEqual([1, 0, 0, 0, 0, 1, 1]) // 0.1, ..., 1, over 1
  })
})

describe('ModelStats of another version (a canary)', () => {
  it("keeps the canary's calls apart from the serving version's, and its run times in the member's recent runs", () => {
    const serving = new ModelStats()
    serving.record('ok', 2, true)
    const canary = serving.ofVersion('2')
    canary.record('ok', 4, false)
    canary.record('error', 1, false)
    expect(serving.ofVersion('2')).toBe(canary)
    expect(serving.otherVersion).toEqual({ version: '2', stats: canary })
    expect([serving.count, serving.ok, serving.errors, serving.wins]).toEqual([1, 1, 0, 1])
    expect([canary.count, canary.ok, canary.errors, canary.wins]).toEqual([2, 1, 1, 0])
    // Member selection judges the member, whichever version ran.
    expect(canary.live).toBe(serving.live)
    expect(serving.live.count).toBe(2)
  })
})

describe('LiveLatency', () => {
  it('p95 of the last 64 runs, known from the 16th on, recomputed every 16', () => {
    const live = new LiveLatency()
    for (let i = 1; i <= 15; i++) live.add(i)
    expect(live.p95).toBeNaN()
    live.add(16)
    expect(live.p95).toBe(16) // floor(0.95 * 16) = 15th of 1..16
    for (let i = 17; i <= 64; i++) live.add(i)
    expect(live.p95).toBe(61)
    // 64 more fast runs push the slow ones out of the ring.
    for (let i = 0; i < 64; i++) live.add(1)
    expect(live.p95).toBe(1)
  })

  it('a run replaced gives its place to a faster one, and p95 is worked out again at once', () => {
    const live = new LiveLatency()
    for (let i = 1; i <= 64; i++) live.add(i)
    expect(live.p95).toBe(61)
    live.replaceSlowest(0.5) // 64 goes
    expect(live.p95).toBe(60)
    live.replaceSlowest(100) // slower than every run kept: nothing changes
    expect(live.p95).toBe(60)
    expect(live.count).toBe(64)
  })
})
