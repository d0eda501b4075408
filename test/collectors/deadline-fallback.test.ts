// Scripted timelines for deadline-fallback: outcomes in arrival order, 'deadline' where the
// deadline fires. `at` is the step that produced the decision (what a user would check).
import { describe, expect, it } from 'vitest'
import { parsed, run } from './timeline.ts'
import { deadlineFallback } from '../../src/collectors/deadline-fallback.ts'
import type { Collector, EnsembleShape } from '../../src/collectors/types.ts'
import type { TensorMap } from '../../src/tensor/index.ts'
import type { Outcome } from '../../src/types.ts'


const out = (v: number): TensorMap => ({ y: { datatype: 'FP32', shape: [1, 1], data: Float32Array.of(v) } })
const ok = (index: number): Outcome => ({ status: 'ok', index, outputs: out(index), latencyMs: 5 })
const err = (index: number): Outcome => ({ status: 'error', index, error: { code: 'MODEL_ERROR', message: 'boom' }, latencyMs: 5 })
const skip = (index: number): Outcome => ({ status: 'skipped', index, error: { code: 'CIRCUIT_OPEN', message: 'open' }, latencyMs: 0 })

const ensemble = (n: number): EnsembleShape => ({
  name: 'e',
  models: Array.from({ length: n }, (_, i) => `m${i}`),
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
  staticQuality: [],
})
const collector = (n: number, hedge?: number): Collector =>
  deadlineFallback.create(parsed(deadlineFallback, hedge === undefined ? {} : { fallback_after_ms: hedge }), ensemble(n)).collector()

describe('deadline-fallback', () => {
  it('returns the preferred model as soon as it finishes', () => {
    const { decision, at } = run(collector(3), [ok(0), ok(1)])
    expect(at).toBe(0)
    expect(decision).toEqual({ kind: 'answer', chosen: 0, reason: 'preferred-finished', outputs: out(0), votes: null })
  })

  it('holds a faster fallback until the preferred model finishes', () => {
    const { decision, at } = run(collector(2), [ok(1), ok(0)])
    expect(at).toBe(1)
    expect(decision).toMatchObject({ chosen: 0, reason: 'preferred-finished' })
  })

  it('preferred model late: the fallback wins at the deadline', () => {
    const { decision, at } = run(collector(3), [ok(2), ok(1), 'deadline'])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ kind: 'answer', chosen: 1, reason: 'fallback-at-deadline', outputs: out(1) })
  })

  it('preferred model errors: falls through and decides on the fallback\'s arrival', () => {
    const { decision, at } = run(collector(2), [err(0), ok(1)])
    expect(at).toBe(1)
    expect(decision).toMatchObject({ chosen: 1, reason: 'fallback-after-error' })
  })

  it('preferred model errors after the fallback arrived: decides at once on the error', () => {
    const { decision, at } = run(collector(2), [ok(1), err(0)])
    expect(at).toBe(1)
    expect(decision).toMatchObject({ chosen: 1, reason: 'fallback-after-error' })
  })

  it('still waits for a pending model that is more preferred than the held success', () => {
    // m2 is held while m1 runs; m0's error alone does not release it.
    const { decision, at } = run(collector(3), [ok(2), err(0), skip(1)])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 2, reason: 'fallback-after-error' })
  })

  it('all models fail: ALL_MODELS_FAILED on the last failure', () => {
    const c = collector(3)
    expect(c.onOutcome(err(1))).toBeUndefined()
    expect(c.onOutcome(skip(0))).toBeUndefined()
    expect(c.onOutcome(err(2))).toEqual({ kind: 'fail', code: 'ALL_MODELS_FAILED', reason: 'all-failed', votes: null })
  })

  it('everything after the deadline: DEADLINE_EXCEEDED', () => {
    const { decision, at } = run(collector(2), ['deadline'])
    expect(at).toBe(0)
    expect(decision).toEqual({ kind: 'fail', code: 'DEADLINE_EXCEEDED', reason: 'deadline', votes: null })
  })

  it('only failures and late models by the deadline: DEADLINE_EXCEEDED', () => {
    const { decision } = run(collector(3), [err(0), err(2), 'deadline'])
    expect(decision).toMatchObject({ kind: 'fail', code: 'DEADLINE_EXCEEDED' })
  })

  it('ignores outcomes after a decision and repeated outcomes', () => {
    const c = collector(2)
    expect(c.onOutcome(err(0))).toBeUndefined()
    expect(c.onOutcome(err(0))).toBeUndefined()
    expect(c.onOutcome(ok(1))).toMatchObject({ chosen: 1 })
    expect(c.onOutcome(ok(0))).toBeUndefined()
  })

  it('fallback_after_ms delays every fallback; without it all start at once', () => {
    expect(deadlineFallback.create(parsed(deadlineFallback, { fallback_after_ms: 25 }), ensemble(3)).startDelaysMs).toEqual([0, 25, 25])
    expect(deadlineFallback.create(parsed(deadlineFallback, {}), ensemble(3)).startDelaysMs).toBeUndefined()
  })

  it('hedge_after_ms, the old name, still works with a deprecation warning; both names at once is an error', () => {
    const warnings: string[] = []
    const problems: string[] = []
    const ctx = { problem: (field: string, m: string) => problems.push(`${field}: ${m}`), warn: (field: string, m: string) => warnings.push(`${field}: ${m}`) }
    expect(deadlineFallback.parse!({ hedge_after_ms: 25 }, ctx)).toEqual({ fallbackAfterMs: 25 })
    expect(warnings).toEqual(['hedge_after_ms: renamed fallback_after_ms; the old name still works for now'])
    expect(problems).toEqual([])
    deadlineFallback.parse!({ hedge_after_ms: 25, fallback_after_ms: 10 }, ctx)
    expect(problems).toEqual(['hedge_after_ms: give fallback_after_ms only (hedge_after_ms is its old name)'])
  })

  it('collectors are independent per request', () => {
    const strategy = deadlineFallback.create(parsed(deadlineFallback, {}), ensemble(2))
    const a = strategy.collector()
    const b = strategy.collector()
    expect(a.onOutcome(err(0))).toBeUndefined()
    expect(b.onOutcome(ok(0))).toMatchObject({ chosen: 0, reason: 'preferred-finished' })
    expect(a.onOutcome(ok(1))).toMatchObject({ chosen: 1, reason: 'fallback-after-error' })
  })

  it('leaves spareable to the default: every member but the preferred one', () => {
    expect(deadlineFallback.create(parsed(deadlineFallback, {}), ensemble(3)).spareable).toBeUndefined()
  })
})
