import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { withTimeout } from '../../../../src/executors/remote/resilience/timeout.ts'
import { outcome, upstream } from './fake-upstream.ts'

beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }))
afterEach(() => vi.useRealTimers())

describe('per-attempt timeout (timeout_ms)', () => {
  it('aborts an attempt that has not answered within timeout_ms with UPSTREAM_UNAVAILABLE, and gives the call the earlier deadline', async () => {
    const { call, attempts } = upstream([{ after: 0, hang: true }])
    const result = outcome(withTimeout(call, 40)('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(39)
    expect(result.done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(result).toMatchObject({ done: true, code: 'UPSTREAM_UNAVAILABLE' })
    expect(attempts[0]!.deadline).toBe(40)
    expect(attempts[0]!.signal.aborted).toBe(true)
  })

  it('sets no timer of its own when the deadline comes first: the caller\'s signal decides', async () => {
    const { call, attempts } = upstream([{ after: 0, hang: true }])
    const caller = new AbortController()
    const result = outcome(withTimeout(call, 500)('x', caller.signal, 100))
    expect(attempts[0]!.signal).toBe(caller.signal)
    expect(vi.getTimerCount()).toBe(0)
    caller.abort(new Error('decided'))
    await vi.advanceTimersByTimeAsync(0)
    expect(result).toMatchObject({ done: true, code: 'ABORTED' })
  })

  it('passes an answer through and leaves no timer behind', async () => {
    const { call } = upstream([{ after: 5, answer: 'ok' }])
    const result = outcome(withTimeout(call, 40)('x', new AbortController().signal, 1000))
    await vi.advanceTimersByTimeAsync(5)
    expect(result).toMatchObject({ done: true, value: 'ok' })
    expect(vi.getTimerCount()).toBe(0)
  })
})
