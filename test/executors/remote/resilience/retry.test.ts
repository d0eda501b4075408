import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { LatencyEstimate } from '../../../../src/executors/remote/resilience/call.ts'
import { withRetry } from '../../../../src/executors/remote/resilience/retry.ts'
import { RetryBudget } from '../../../../src/executors/remote/resilience/retry-budget.ts'
import { withTimeout } from '../../../../src/executors/remote/resilience/timeout.ts'
import { outcome, upstream } from './fake-upstream.ts'

beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }))
afterEach(() => vi.useRealTimers())

const options = (retries: number, expectedMs = 0, perSecond = 10) => {
  const latency = new LatencyEstimate()
  if (expectedMs) latency.observe(expectedMs)
  return { retries, budget: new RetryBudget({ ratio: 0, minPerSecond: perSecond }), latency }
}

describe('budget-aware retries', () => {
  it('retries a retryable failure at once, up to `retries` times', async () => {
    const { call, attempts } = upstream([{ after: 5, fail: 'retryable' }, { after: 5, fail: 'retryable' }, { after: 5, answer: 'third' }])
    const result = outcome(withRetry(call, options(2))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(15)
    expect(attempts.map((a) => a.at)).toEqual([0, 5, 10])
    expect(result.value).toBe('third')
    const again = upstream([{ after: 5, fail: 'retryable' }])
    const failed = outcome(withRetry(again.call, options(1))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(20)
    expect(again.attempts).toHaveLength(2)
    expect(failed.code).toBe('UPSTREAM_UNAVAILABLE')
  })

  it('never retries a final failure', async () => {
    const { call, attempts } = upstream([{ after: 5, fail: 'final' }])
    const result = outcome(withRetry(call, options(3))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(20)
    expect(attempts).toHaveLength(1)
    expect(result.code).toBe('UPSTREAM_UNAVAILABLE')
  })

  it('does not retry when less budget is left than the upstream usually takes, or the retry budget is spent', async () => {
    const late = upstream([{ after: 80, fail: 'retryable' }])
    outcome(withRetry(late.call, options(3, 30))('x', new AbortController().signal, 100))
    await vi.advanceTimersByTimeAsync(100)
    expect(late.attempts).toHaveLength(1) // 20 ms left at 80, the upstream takes ~30
    const broke = upstream([{ after: 5, fail: 'retryable' }])
    outcome(withRetry(broke.call, options(3, 0, 0))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(100)
    expect(broke.attempts).toHaveLength(1)
  })

  it('stops at once with the caller\'s reason when the caller\'s signal fires', async () => {
    const { call, attempts } = upstream([{ after: 0, hang: true }])
    const caller = new AbortController()
    const result = outcome(withRetry(call, options(3))('x', caller.signal, 1000))
    caller.abort(Object.assign(new Error('decided'), { code: 'DECIDED' }))
    await vi.advanceTimersByTimeAsync(10)
    expect(attempts).toHaveLength(1)
    expect(result.code).toBe('DECIDED')
  })

  it('retries an attempt cut off by timeout_ms, with what is left of the budget', async () => {
    const { call, attempts } = upstream([{ after: 0, hang: true }, { after: 5, answer: 'second' }])
    const result = outcome(withRetry(withTimeout(call, 40), options(2))('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(45)
    expect(attempts.map((a) => a.at)).toEqual([0, 40])
    expect(attempts[0]!.signal.aborted).toBe(true) // the first attempt was cancelled, not left running
    expect(result.value).toBe('second')
  })
})
