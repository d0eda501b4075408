// Member selection through the real Gateway, starter and collectors, with scripted
// executors on a fake clock: latency-aware skips a member whose live p95 cannot fit, adaptive
// starts the fewest members whose agreement has matched the whole ensemble, and starts the
// rest when they disagree, fail or run late.
import { describe, expect, it, vi } from 'vitest'
import { ConfigError } from '../../src/config/yaml.ts'
import type { Gateway } from '../../src/gateway.ts'
import { BARS, MIN_SAMPLES, Selection } from '../../src/starter/selection.ts'
import type { PredictResult } from '../../src/types.ts'
import { configFrom } from '../helpers.ts'
import { predictAfter, serve, useFakeClock } from './fake-clock.ts'
import { signals, x } from './scripted.ts'

useFakeClock()

/** The statistics' slot of prefix size k at confidence bar t. */
const at = (k: number, t = 0): number => k * BARS.length + t
const statuses = (r: PredictResult): string[] => r.models.map((m) => `${m.name}:${m.status}${m.used ? '*' : ''}${m.error ? `(${m.error.code})` : ''}`)

describe('select: latency-aware', () => {
  const models = '  remote: { kind: scripted, delay_ms: 400, label: 1 }\n  local: { kind: scripted, delay_ms: 2, label: 0 }'
  const ensemble = (select: string): string => `    strategy: deadline-fallback\n    models: [remote, local]\n    budget_ms: { default: 50, max: 1000 }\n${select}`

  it('stops starting a member whose live p95 cannot fit the budget: the fallback answers at once', async () => {
    const g = await serve(models, ensemble('    select: latency-aware'))
    // Nothing is known at first: the slow member runs, times out, and its cut runs (50 ms) are its live latency.
    for (let i = 0; i < 16; i++) expect(statuses(await predictAfter(g, 50))).toEqual(['remote:timeout', 'local:ok*'])
    const r = await predictAfter(g, 2)
    expect(statuses(r)).toEqual(['remote:skipped(WOULD_MISS_DEADLINE)', 'local:ok*'])
    expect(r.decision).toMatchObject({ chosen: 'local', reason: 'fallback-after-error' })
    expect(r.elapsed_ms).toBe(2)
    expect(signals.get('remote')).toHaveLength(16)
    expect(g.ensemble('e').requestStats.membersStarted).toBe(16 * 2 + 1)
  })

  it('starts a fallback held back by fallback_after_ms at once when the member before it is skipped', async () => {
    // The skip happens as the request starts, before the fallback's delay timer exists.
    const g = await serve(models, '    strategy: { name: deadline-fallback, fallback_after_ms: 30 }\n    select: latency-aware\n    models: [remote, local]\n    budget_ms: { default: 50, max: 1000 }')
    for (let i = 0; i < 16; i++) await predictAfter(g, 50)
    const r = await predictAfter(g, 2, 'r', 25)
    expect(statuses(r)).toEqual(['remote:skipped(WOULD_MISS_DEADLINE)', 'local:ok*'])
    expect(r.elapsed_ms).toBe(2)
  })

  it('skips a member cut at every deadline when its deadline falls between the timers\' milliseconds', async () => {
    // Real requests start at any fraction of a millisecond, and timers fire on whole ones: the
    // deadline is decided up to 1 ms early (here 0.4 ms, with a 50.4 ms budget). A cut run still
    // counts as the whole time it had, so its p95 does not look as if it fitted the next budget.
    const g = await serve(models, ensemble('    select: latency-aware'))
    for (let i = 0; i < 16; i++) {
      const cut = await predictAfter(g, 51, 'r', 50.4)
      expect(statuses(cut)).toEqual(['remote:timeout', 'local:ok*'])
      expect(cut.models[0]!.latency_ms).toBe(50.4)
    }
    expect(statuses(await predictAfter(g, 2, 'r', 50.4))).toEqual(['remote:skipped(WOULD_MISS_DEADLINE)', 'local:ok*'])
  })

  it('starts the skipped member again every 32nd request, so a recovered one is seen', async () => {
    const g = await serve(models, ensemble('    select: latency-aware'))
    for (let i = 0; i < 16; i++) await predictAfter(g, 50)
    for (let i = 1; i < 32; i++) expect((await predictAfter(g, 2)).models[0]!.status).toBe('skipped')
    expect((await predictAfter(g, 50)).models[0]!.status).toBe('timeout')
  })

  it('a member slowed by a passing stall is started again after a few probes that answer in time, not thousands of requests', async () => {
    // Slow for its first 16 runs (cut at 50 ms each), then fast again.
    const stalled = `  remote: { kind: scripted, delays_ms: [${[...Array<number>(16).fill(400), 2].join(', ')}], label: 1 }\n  local: { kind: scripted, delay_ms: 2, label: 0 }`
    const g = await serve(stalled, ensemble('    select: latency-aware'))
    for (let i = 0; i < 16; i++) await predictAfter(g, 50)
    for (let i = 1; i < 32; i++) expect((await predictAfter(g, 2)).models[0]!.status).toBe('skipped')
    // The probe answers in 2 ms, well within the 50 ms it had: it takes a slow run's place, and the next probe comes sooner.
    expect(statuses(await predictAfter(g, 2))).toEqual(['remote:ok*', 'local:cancelled'])
    const next: string[] = []
    for (let i = 0; i < 120; i++) next.push((await predictAfter(g, 2)).models[0]!.status)
    // All 16 of its runs were slow. Each probe in time displaces one and adds itself: after 15 (31 runs, one slow) its p95 fits, the 15th coming 16 + 8 + 4 + 2 × 11 = 50 requests on (the old code took thousands).
    expect(next.lastIndexOf('skipped')).toBe(48)
    expect(next.slice(49)).toEqual(Array<string>(71).fill('ok'))
  })

  it('a probe cut by the deadline after one in time puts probes back at every 32nd request', async () => {
    const flaky = `  remote: { kind: scripted, delays_ms: [${[...Array<number>(16).fill(400), 2, 400].join(', ')}], label: 1 }\n  local: { kind: scripted, delay_ms: 2, label: 0 }`
    const g = await serve(flaky, ensemble('    select: latency-aware'))
    for (let i = 0; i < 16; i++) await predictAfter(g, 50)
    for (let i = 1; i < 32; i++) await predictAfter(g, 2)
    expect((await predictAfter(g, 2)).models[0]!.status).toBe('ok')
    // In time: the next probe comes 16 requests on. It is slow again, cut at the deadline.
    for (let i = 1; i < 16; i++) expect((await predictAfter(g, 2)).models[0]!.status).toBe('skipped')
    expect((await predictAfter(g, 50)).models[0]!.status).toBe('timeout')
    for (let i = 1; i < 32; i++) expect((await predictAfter(g, 2)).models[0]!.status).toBe('skipped')
    expect((await predictAfter(g, 50)).models[0]!.status).toBe('timeout')
  })

  it('a probe that still misses keeps the member skipped', async () => {
    const g = await serve(models, ensemble('    select: latency-aware'))
    for (let i = 0; i < 16; i++) await predictAfter(g, 50)
    for (let i = 1; i < 32; i++) await predictAfter(g, 2)
    expect((await predictAfter(g, 50)).models[0]!.status).toBe('timeout')
    // Probes stay 32 requests apart.
    for (let i = 1; i < 32; i++) expect(statuses(await predictAfter(g, 2))).toEqual(['remote:skipped(WOULD_MISS_DEADLINE)', 'local:ok*'])
    expect((await predictAfter(g, 50)).models[0]!.status).toBe('timeout')
  })

  it('when no member\'s p95 fits, the one with the lowest is started rather than failing the request at once', async () => {
    // A busy box slowed both: remote is cut at the 50 ms deadline, local answers in 40 ms but once in 10 ms (used at the deadline, remote cut).
    const slowed = `  remote: { kind: scripted, delay_ms: 400, label: 1 }\n  local: { kind: scripted, delays_ms: [10, ${[...Array<number>(15).fill(40), 2].join(', ')}], label: 0 }`
    const g = await serve(slowed, ensemble('    select: latency-aware'))
    for (let i = 0; i < 16; i++) expect(statuses(await predictAfter(g, 50))).toEqual(['remote:timeout', 'local:ok*'])
    // A 30 ms budget: neither p95 (50, 40) fits. local, the lower, still runs, and answers in time, every time.
    for (let i = 0; i < 20; i++) {
      const r = await predictAfter(g, 2, 'r', 30)
      expect(statuses(r)).toEqual(['remote:skipped(WOULD_MISS_DEADLINE)', 'local:ok*'])
      expect(r.elapsed_ms).toBe(2)
    }
    // Its first runs so were probes that answered in time, each displacing one of its slow runs, until its p95 fit again.
    expect(g.ensemble('e').selection!.p95(1)).toBeLessThan(30)
  })

  it('when no member\'s p95 fits and they tie, the first listed is started', async () => {
    // best-quality waits for both: each answers once in 2 ms, then is cut at the deadline 15 times (p95 50, fastest 2).
    const both = `[2, ${Array<number>(15).fill(400).join(', ')}, 2]`
    const g = await serve(`  remote: { kind: scripted, delays_ms: ${both}, label: 1 }\n  local: { kind: scripted, delays_ms: ${both}, label: 0 }`, ensemble('    select: latency-aware').replace('deadline-fallback', 'best-quality'))
    for (let i = 0; i < 16; i++) await predictAfter(g, 50)
    expect(statuses(await predictAfter(g, 2))).toEqual(['remote:ok*', 'local:skipped(WOULD_MISS_DEADLINE)'])
  })

  it('when no member has had a recent run within the budget, every one is skipped and the request fails at once', async () => {
    const g = await serve('  remote: { kind: scripted, delay_ms: 400, label: 1 }\n  local: { kind: scripted, delay_ms: 400, label: 0 }', ensemble('    select: latency-aware'))
    // Both cut at the deadline every time: not one run of either fitted 50 ms.
    for (let i = 0; i < 16; i++) await predictAfter(g, 50)
    const r = await predictAfter(g, 0)
    expect(statuses(r)).toEqual(['remote:skipped(WOULD_MISS_DEADLINE)', 'local:skipped(WOULD_MISS_DEADLINE)'])
    expect(r.error).toMatchObject({ code: 'DEADLINE_EXCEEDED', message: 'the budget is too small for any model of the ensemble' })
  })

  it('follows a probe of the first member in an ensemble of 33, whatever the 33rd does meanwhile', async () => {
    // m0 slow for its first 16 runs, then fast; m32 always answers first. Bit shifts wrap at 32: m32's outcome must not stand for m0's.
    const names = Array.from({ length: 33 }, (_, i) => `m${i}`)
    const delay = (i: number): string => (i === 0 ? `delays_ms: [${[...Array<number>(16).fill(400), 2].join(', ')}]` : `delay_ms: ${i === 32 ? 1 : 2}`)
    const models = names.map((m, i) => `  ${m}: { kind: scripted, ${delay(i)}, label: 1 }`).join('\n')
    const g = await serve(models, `    strategy: best-quality\n    models: [${names.join(', ')}]\n    budget_ms: { default: 50, max: 1000 }\n    select: latency-aware`)
    for (let i = 0; i < 16; i++) await predictAfter(g, 50)
    for (let i = 1; i < 32; i++) expect((await predictAfter(g, 2)).models[0]!.status).toBe('skipped')
    expect((await predictAfter(g, 2)).models[0]!.status).toBe('ok')
    // The probe answered in time: the next comes 16 requests on, not 32.
    for (let i = 1; i < 16; i++) expect((await predictAfter(g, 2)).models[0]!.status).toBe('skipped')
    expect((await predictAfter(g, 2)).models[0]!.status).toBe('ok')
  })

  it('without select, the slow member starts every time', async () => {
    const g = await serve(models, ensemble(''))
    for (let i = 0; i < 20; i++) expect(statuses(await predictAfter(g, 50))).toEqual(['remote:timeout', 'local:ok*'])
  })
})

describe('select: adaptive', () => {
  const vote = '    strategy: majority-vote\n    models: [a, b, c]\n    budget_ms: { default: 100, max: 1000 }\n    select: { policy: adaptive, accuracy_target: 0.95, explore: 0.25 }'

  it('learns from runs of every member that the first one alone decides as all three would, then starts only it', async () => {
    const g = await serve('  a: { kind: scripted, delay_ms: 2, label: 1 }\n  b: { kind: scripted, delay_ms: 3, label: 1 }\n  c: { kind: scripted, delay_ms: 4, label: 1 }', vote)
    // Until MIN_SAMPLES runs of all three are in, every request starts all three.
    for (let i = 0; i < MIN_SAMPLES; i++) expect((await predictAfter(g, 4)).models[2]!.status).not.toBe('skipped')
    const selection = g.ensemble('e').selection!
    // Each prefix (a; a and b) answered alike every time, and the vote replayed on it alone chose what all three did.
    expect([selection.unanimous[at(1)], selection.unanimous[at(2)]]).toEqual([MIN_SAMPLES, MIN_SAMPLES])
    expect([selection.matched[at(1)], selection.matched[at(2)]]).toEqual([MIN_SAMPLES, MIN_SAMPLES])
    // Their answers were certain (probability 1): every confidence bar counts them too.
    expect(selection.unanimous[at(1, BARS.length - 1)]).toBe(MIN_SAMPLES)
    expect([selection.k, selection.bar]).toEqual([1, 0])
    await predictAfter(g, 4) // then one in four (explore 0.25) still starts all
    const r = await predictAfter(g, 2)
    expect(statuses(r)).toEqual(['a:ok*', 'b:skipped(NOT_NEEDED)', 'c:skipped(NOT_NEEDED)'])
    expect(r.decision).toMatchObject({ reason: 'plurality', votes: { 1: 1 } })
    expect(r.elapsed_ms).toBe(2)
    const calls = signals.get('c')!.length
    await predictAfter(g, 2)
    expect(signals.get('c')).toHaveLength(calls)
  })

  it('does not trust a prefix whose replayed decision differed from all members\' (on_no_majority: abstain)', async () => {
    const abstain = vote.replace('strategy: majority-vote', 'strategy: { name: majority-vote, on_no_majority: abstain }')
    const g = await serve('  a: { kind: scripted, delay_ms: 2, label: 1 }\n  b: { kind: scripted, delay_ms: 3, label: 1 }\n  c: { kind: scripted, delay_ms: 4, label: 1 }', abstain)
    for (let i = 0; i < MIN_SAMPLES + 1; i++) await predictAfter(g, 4)
    const selection = g.ensemble('e').selection!
    // a alone is one vote of three: no majority, an abstention, never what all three decided.
    expect(selection.matched[at(1)]).toBe(0)
    expect(selection.matched[at(2)]).toBe(MIN_SAMPLES + 1)
    expect(statuses(await predictAfter(g, 3))).toEqual(['a:ok*', 'b:ok', 'c:skipped(NOT_NEEDED)'])
  })

  /** An adaptive ensemble whose choice is already: start two, enough when they agree with probability ≥ `bar`. */
  async function trusted(models: string, ensemble = vote, bar = 0): Promise<Gateway> {
    const g = await serve(models, ensemble)
    await predictAfter(g, 500) // the first request is a sampling run
    const selection = g.ensemble('e').selection!
    selection.k = 2
    selection.bar = bar
    return g
  }

  it('says a member it held back was not started because of the cancel, when the request is cancelled first', async () => {
    const g = await trusted('  a: { kind: scripted, delay_ms: 20, label: 1 }\n  b: { kind: scripted, delay_ms: 30, label: 1 }\n  c: { kind: scripted, delay_ms: 4, label: 1 }')
    const controller = new AbortController()
    const pending = g.predict({ id: 'r', ensemble: 'e', inputs: x, signal: controller.signal })
    await vi.advanceTimersByTimeAsync(5)
    controller.abort()
    const r = await pending
    expect(statuses(r)).toEqual(['a:cancelled', 'b:cancelled', 'c:skipped(NOT_NEEDED)'])
    expect(r.models[2]!.error!.message).toBe('not started: the request was cancelled while the members started first were still out (select: adaptive)')
  })

  it('starts the third member when the first two agree, but less surely than the bar', async () => {
    // Scripted answers are certain (probability 1 for their label): a bar above 1 is never met.
    const g = await trusted('  a: { kind: scripted, delay_ms: 2, label: 1 }\n  b: { kind: scripted, delay_ms: 3, label: 1 }\n  c: { kind: scripted, delay_ms: 4, label: 1 }', vote, 1.5)
    expect(statuses(await predictAfter(g, 3))).toEqual(['a:ok*', 'b:ok', 'c:cancelled'])
  })

  it('does not start it when they agree at least as surely as the bar', async () => {
    const g = await trusted('  a: { kind: scripted, delay_ms: 2, label: 1 }\n  b: { kind: scripted, delay_ms: 3, label: 1 }\n  c: { kind: scripted, delay_ms: 4, label: 1 }', vote, 0.99)
    expect(statuses(await predictAfter(g, 3))).toEqual(['a:ok*', 'b:ok', 'c:skipped(NOT_NEEDED)'])
  })

  it('starts the third member when the first two disagree', async () => {
    const g = await trusted('  a: { kind: scripted, delay_ms: 2, label: 1 }\n  b: { kind: scripted, delay_ms: 3, label: 0 }\n  c: { kind: scripted, delay_ms: 4, label: 1 }')
    const r = await predictAfter(g, 7)
    expect(statuses(r)).toEqual(['a:ok*', 'b:ok', 'c:ok'])
    expect(r.elapsed_ms).toBe(7) // c started at 3 ms, when b disagreed
  })

  it('starts the third member when one of the first fails', async () => {
    const g = await trusted('  a: { kind: scripted, delay_ms: 2, fail: boom }\n  b: { kind: scripted, delay_ms: 3, label: 1 }\n  c: { kind: scripted, delay_ms: 4, label: 1 }')
    const r = await predictAfter(g, 6)
    expect(statuses(r)).toEqual(['a:error(MODEL_FAILED)', 'b:ok*', 'c:ok'])
    expect(r.elapsed_ms).toBe(6)
  })

  it('starts the third member when the first run late (half the budget while their p95 is unknown)', async () => {
    const g = await trusted('  a: { kind: scripted, delay_ms: 2, label: 1 }\n  b: { kind: scripted, delay_ms: 400, label: 1 }\n  c: { kind: scripted, delay_ms: 4, label: 1 }')
    const r = await predictAfter(g, 54)
    expect(statuses(r)).toEqual(['a:ok*', 'b:cancelled', 'c:ok'])
    expect(r.elapsed_ms).toBe(54)
  })

  it('is refused on a regression ensemble (it compares labels)', () => {
    expect(Selection.problem({ policy: 'adaptive', accuracyTarget: 0.9, explore: 0.1 }, [{ name: 'variable', datatype: 'FP32', shape: [-1, 1] }])).toMatch(/needs a classification ensemble/)
    expect(Selection.problem({ policy: 'latency-aware' }, [{ name: 'variable', datatype: 'FP32', shape: [-1, 1] }])).toBeUndefined()
  })

  it('needs accuracy_target; accuracy_target and explore belong to adaptive', () => {
    expect(() => configFrom('models:\n  a: { kind: scripted }\nensembles:\n  e:\n    strategy: deadline-fallback\n    models: [a]\n    select: adaptive\n')).toThrow(
      /ensembles\.e\.select: policy adaptive needs accuracy_target/,
    )
    expect(() => configFrom('models:\n  a: { kind: scripted }\nensembles:\n  e:\n    strategy: deadline-fallback\n    models: [a]\n    select: { policy: latency-aware, explore: 0.1 }\n')).toThrow(
      /accuracy_target and explore apply to policy adaptive/,
    )
    expect(() => configFrom('models:\n  a: { kind: scripted }\nensembles:\n  e:\n    strategy: deadline-fallback\n    models: [a]\n    select: sometimes\n')).toThrow(ConfigError)
  })
})
