import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { withHedge } from '../../../../src/executors/remote/resilience/hedge.ts'
import { RetryBudget } from '../../../../src/executors/remote/resilience/retry-budget.ts'
import { outcome, upstream } from './fake-upstream.ts'

beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }))
afterEach(() => vi.useRealTimers())

const budget = (perSecond: number): RetryBudget => new RetryBudget({ ratio: 0, minPerSecond: perSecond })

describe('hedged requests (hedge_after_ms)', () => {
  it('sends a second request after hedge_after_ms; the first answer wins and the other attempt is aborted', async () => {
    const { call, attempts } = upstream([{ after: 100, answer: 'slow' }, { after: 10, answer: 'fast' }])
    const result = outcome(withHedge(call, 30, budget(10))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(29)
    expect(attempts).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(11)
    expect(attempts.map((a) => a.at)).toEqual([0, 30])
    expect(result).toMatchObject({ done: true, value: 'fast' })
    expect(attempts[0]!.signal.aborted).toBe(true)
  })

  it('starts no attempt for a request already cancelled, and rejects with its reason', async () => {
    const { call, attempts } = upstream([{ after: 10, answer: 'ok' }])
    const cancelled = new AbortController()
    cancelled.abort(Object.assign(new Error('gone'), { code: 'CANCELLED' }))
    const result = outcome(withHedge(call, 30, budget(10))('x', cancelled.signal, 1000))
    await vi.advanceTimersByTimeAsync(100)
    expect([attempts.length, result]).toEqual([0, { code: 'CANCELLED', done: true }])
  })

  it('sends no second request when the first answers in time, or when the retry budget is spent', async () => {
    const quick = upstream([{ after: 10, answer: 'ok' }])
    outcome(withHedge(quick.call, 30, budget(10))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(100)
    expect(quick.attempts).toHaveLength(1)
    const slow = upstream([{ after: 100, answer: 'ok' }])
    const result = outcome(withHedge(slow.call, 30, budget(0))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(100)
    expect(slow.attempts).toHaveLength(1)
    expect(result.value).toBe('ok')
  })

  it('fails only when every attempt failed, with the first error', async () => {
    const { call } = upstream([{ after: 50, fail: 'final' }, { after: 40, fail: 'retryable' }])
    const result = outcome(withHedge(call, 30, budget(10))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(60)
    expect(result.done).toBe(false) // the first failed at 50; the hedge is still out
    await vi.advanceTimersByTimeAsync(10)
    expect(result).toMatchObject({ done: true, code: 'UPSTREAM_UNAVAILABLE' })
  })

  it('aborts both attempts when the caller\'s signal fires', async () => {
    const { call, attempts } = upstream([{ after: 0, hang: true }])
    const caller = new AbortController()
    const result = outcome(withHedge(call, 30, budget(10))('x', caller.signal, 1000))
    await vi.advanceTimersByTimeAsync(30)
    caller.abort(new Error('decided'))
    await vi.advanceTimersByTimeAsync(0)
    expect(attempts.every((a) => a.signal.aborted)).toBe(true)
    expect(result).toMatchObject({ done: true, code: 'ABORTED' })
  })
})
