// The request lifecycle through the real Gateway and collectors, with scripted executors
// on a fake clock: every time below is exact, not a wall-clock bound.
import { describe, expect, it, vi } from 'vitest'
import type { PredictResult } from '../../src/types.ts'
import { configFrom } from '../helpers.ts'
import { predictAfter, serve, useFakeClock } from './fake-clock.ts'
import { signals, x } from './scripted.ts'

useFakeClock()

const statuses = (r: PredictResult): string[] => r.models.map((m) => `${m.name}:${m.status}${m.used ? '*' : ''}`)

describe('starter: request lifecycle', () => {
  it('answers with the preferred model as soon as it finishes, and aborts the rest', async () => {
    const g = await serve(
      '  smart: { kind: scripted, delay_ms: 5, label: 1, version: "7" }\n  simple: { kind: scripted, delay_ms: 200, label: 0 }',
      '    strategy: deadline-fallback\n    models: [smart, simple]\n    budget_ms: { default: 500, max: 1000 }',
    )
    const r = await predictAfter(g, 5)
    expect(r.error).toBeNull()
    expect(r.decision).toEqual({ chosen: 'smart', reason: 'preferred-finished', votes: null })
    expect(statuses(r)).toEqual(['smart:ok*', 'simple:cancelled'])
    expect(r.models[0]?.version).toBe('7')
    expect(r.elapsed_ms).toBe(5)
    expect(signals.get('simple')?.[0]?.aborted).toBe(true)
  })

  it('answers by the deadline with the fallback when the preferred model is late', async () => {
    const g = await serve(
      '  smart: { kind: scripted, delay_ms: 400 }\n  simple: { kind: scripted, delay_ms: 2, label: 0 }',
      '    strategy: deadline-fallback\n    models: [smart, simple]\n    budget_ms: { default: 60, max: 1000 }',
    )
    const r = await predictAfter(g, 60)
    expect(r.decision).toMatchObject({ chosen: 'simple', reason: 'fallback-at-deadline' })
    expect(statuses(r)).toEqual(['smart:timeout', 'simple:ok*'])
    expect(r.elapsed_ms).toBe(60)
    expect(r.models[0]?.latency_ms).toBe(60)
  })

  it('decides at the deadline where timers fire late in proportion to their length', async () => {
    // A busy VM fires a timer ~1.2% late (450 ms → 5–7 ms late); here every timer is 2% late.
    const onTime = globalThis.setTimeout
    vi.stubGlobal('setTimeout', (fn: (...a: unknown[]) => void, ms = 0, ...args: unknown[]) => onTime(() => fn(...args), ms * 1.02))
    try {
      const g = await serve(
        '  smart: { kind: scripted, delay_ms: 5000 }\n  simple: { kind: scripted, delay_ms: 2, label: 0 }',
        '    strategy: deadline-fallback\n    models: [smart, simple]\n    budget_ms: { default: 400, max: 1000 }',
      )
      const r = await predictAfter(g, 401)
      expect(r.decision).toMatchObject({ chosen: 'simple', reason: 'fallback-at-deadline' })
      // Each step is 2% late too, but the last one is a few ms long: late by a fraction of a ms.
      expect(r.elapsed_ms).toBeCloseTo(400, 0)
    } finally {
      vi.unstubAllGlobals()
    }
  })

  it('answers by the deadline even when a model hangs and ignores abort', async () => {
    const g = await serve('  stuck: { kind: scripted, hang: true }\n  ok: { kind: scripted, delay_ms: 1 }', '    strategy: best-quality\n    models: [stuck, ok]\n    budget_ms: { default: 40, max: 100 }')
    const r = await predictAfter(g, 40)
    expect(r.elapsed_ms).toBe(40)
    expect(r.decision.chosen).toBe('ok')
    expect(statuses(r)).toEqual(['stuck:timeout', 'ok:ok*'])
  })

  it('fails with DEADLINE_EXCEEDED and annotations when nothing finishes in time', async () => {
    const g = await serve('  a: { kind: scripted, delay_ms: 300 }\n  b: { kind: scripted, hang: true }', '    strategy: deadline-fallback\n    models: [a, b]\n    budget_ms: { default: 20, max: 100 }')
    const r = await predictAfter(g, 20)
    expect(r.error?.code).toBe('DEADLINE_EXCEEDED')
    expect(r.outputs).toBeNull()
    expect(statuses(r)).toEqual(['a:timeout', 'b:timeout'])
  })

  it('fails with ALL_MODELS_FAILED as soon as the last model fails, each error annotated', async () => {
    const g = await serve('  a: { kind: scripted, fail: "boom" }\n  b: { kind: scripted, delay_ms: 3, fail: "bust" }', '    strategy: deadline-fallback\n    models: [a, b]\n    budget_ms: { default: 500, max: 1000 }')
    const r = await predictAfter(g, 3)
    expect(r.error?.code).toBe('ALL_MODELS_FAILED')
    expect(r.elapsed_ms).toBe(3)
    expect(r.models.map((m) => m.error?.message)).toEqual(['boom', 'bust'])
  })

  it('falls through at once when the preferred model fails', async () => {
    const g = await serve('  smart: { kind: scripted, fail: "down" }\n  simple: { kind: scripted, delay_ms: 2 }', '    strategy: deadline-fallback\n    models: [smart, simple]\n    budget_ms: { default: 500, max: 1000 }')
    const r = await predictAfter(g, 2)
    expect(r.decision).toMatchObject({ chosen: 'simple', reason: 'fallback-after-error' })
    expect(r.elapsed_ms).toBe(2)
  })

  it('with fallback_after_ms, never starts the fallback when the preferred model answers first', async () => {
    const g = await serve('  smart: { kind: scripted, delay_ms: 2 }\n  simple: { kind: scripted }', '    strategy: { name: deadline-fallback, fallback_after_ms: 100 }\n    models: [smart, simple]\n    budget_ms: { default: 500, max: 1000 }')
    const r = await predictAfter(g, 2)
    expect(statuses(r)).toEqual(['smart:ok*', 'simple:skipped'])
    expect(r.models[1]?.error).toEqual({ code: 'NOT_NEEDED', message: 'not started: the request was decided before its start delay (fallback_after_ms) ran out' })
    expect(signals.get('simple')).toBeUndefined()
  })

  it('with fallback_after_ms, says why a fallback never started when the deadline or a cancel came first', async () => {
    const g = await serve('  smart: { kind: scripted, hang: true }\n  simple: { kind: scripted }', '    strategy: { name: deadline-fallback, fallback_after_ms: 80 }\n    models: [smart, simple]\n    budget_ms: { default: 500, max: 1000 }')
    const r = await predictAfter(g, 50, 'short', 50)
    expect(r.error?.code).toBe('DEADLINE_EXCEEDED')
    expect(r.models[1]).toMatchObject({ status: 'skipped', error: { code: 'NOT_NEEDED', message: expect.stringMatching(/^not started: the deadline came before/) } })
    const run = g.start({ id: 'cancelled', ensemble: 'e', inputs: x })
    await vi.advanceTimersByTimeAsync(10)
    run.cancel()
    expect((await run.result).models[1]).toMatchObject({ status: 'skipped', error: { code: 'NOT_NEEDED', message: expect.stringMatching(/^not started: the request was cancelled before/) } })
  })

  it('with fallback_after_ms, starts the fallback at once when the preferred model fails', async () => {
    const g = await serve('  smart: { kind: scripted, delay_ms: 1, fail: "x" }\n  simple: { kind: scripted }', '    strategy: { name: deadline-fallback, fallback_after_ms: 300 }\n    models: [smart, simple]\n    budget_ms: { default: 500, max: 1000 }')
    const r = await predictAfter(g, 2)
    expect(r.decision.chosen).toBe('simple')
    expect(r.elapsed_ms).toBeLessThanOrEqual(2) // started when smart failed (fake time), not 300 ms later
  })

  it('counts a model that answers after the decision as late and tells the hook', async () => {
    const g = await serve('  fast: { kind: scripted, delay_ms: 1 }\n  slow: { kind: scripted, delay_ms: 30 }', '    strategy: { name: best-quality, good_enough: 0.5 }\n    models: [fast, slow]\n    budget_ms: { default: 500, max: 1000 }')
    const late: number[] = []
    g.hooks.onLate = (_result, model) => late.push(model)
    const r = await predictAfter(g, 1)
    expect(r.decision.reason).toBe('good-enough')
    await vi.advanceTimersByTimeAsync(29)
    expect(late).toEqual([1])
    expect(g.model('slow').stats.toJSON()).toMatchObject({ count: 1, cancelled: 1, late: 1 })
    expect(g.model('fast').stats.toJSON()).toMatchObject({ count: 1, ok: 1, wins: 1 })
  })

  it('stops every model when the client cancels, through the request signal or the run', async () => {
    const g = await serve('  a: { kind: scripted, delay_ms: 300 }', '    strategy: deadline-fallback\n    models: [a]\n    budget_ms: { default: 500, max: 1000 }')
    const client = new AbortController()
    const pending = g.predict({ id: 'r10', ensemble: 'e', inputs: x, signal: client.signal })
    client.abort()
    const r = await pending
    expect(r.error?.code).toBe('CANCELLED')
    expect(signals.get('a')?.[0]?.aborted).toBe(true)
    const run = g.start({ id: 'r11', ensemble: 'e', inputs: x })
    await vi.advanceTimersByTimeAsync(10)
    run.cancel()
    const cancelled = await run.result
    expect(cancelled).toMatchObject({ error: { code: 'CANCELLED' }, elapsed_ms: 10 })
    expect(cancelled.models[0]).toMatchObject({ status: 'cancelled', latency_ms: 10 })
    expect(signals.get('a')?.[1]?.aborted).toBe(true)
    expect(g.ensembles.get('e')!.requestStats.outcomes.get('CANCELLED')).toBe(2)
    expect(g.admission.count).toBe(0)
  })

  it('says a member with no start delay was not started because the request was cancelled before it began', async () => {
    const g = await serve('  a: { kind: scripted, delay_ms: 1 }\n  b: { kind: scripted, delay_ms: 1 }', '    strategy: deadline-fallback\n    models: [a, b]\n    budget_ms: { default: 500, max: 1000 }')
    const r = await g.predict({ id: 'r12', ensemble: 'e', inputs: x, signal: AbortSignal.abort() })
    expect(r.error?.code).toBe('CANCELLED')
    expect(r.models.map((m) => [m.name, m.status])).toEqual([['a', 'skipped'], ['b', 'skipped']])
    for (const m of r.models) expect(m.error).toEqual({ code: 'NOT_NEEDED', message: 'not started: the request was cancelled before it was started' })
    expect(signals.get('a')).toBeUndefined()
  })

  it('hands every finished predict to the onResult hook once', async () => {
    const g = await serve('  a: { kind: scripted }', '    strategy: deadline-fallback\n    models: [a]')
    const seen: string[] = []
    g.hooks.onResult = (result) => seen.push(result.id)
    await predictAfter(g, 0, 'one')
    await predictAfter(g, 0, 'two')
    expect(seen).toEqual(['one', 'two'])
  })

  it('sheds load past max_in_flight with OVERLOADED, and reads the limit live across a reload', async () => {
    const ensemble = '    strategy: deadline-fallback\n    models: [a]'
    const g = await serve('  a: { kind: scripted, delay_ms: 20 }', ensemble, 'server: { max_in_flight: 1 }\n')
    const first = g.predict({ id: 'a', ensemble: 'e', inputs: x })
    expect(() => g.predict({ id: 'b', ensemble: 'e', inputs: x })).toThrow(expect.objectContaining({ code: 'OVERLOADED' }))
    await g.reload(configFrom(`server: { max_in_flight: 2 }\nmodels:\n  a: { kind: scripted, delay_ms: 20 }\nensembles:\n  e:\n${ensemble}\n`))
    const second = g.predict({ id: 'c', ensemble: 'e', inputs: x })
    expect(() => g.predict({ id: 'd', ensemble: 'e', inputs: x })).toThrow(expect.objectContaining({ code: 'OVERLOADED' }))
    await vi.advanceTimersByTimeAsync(20)
    expect((await first).error).toBeNull()
    expect((await second).error).toBeNull()
    expect(g.admission.count).toBe(0)
  })
})
