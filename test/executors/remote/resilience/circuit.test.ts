import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Admission, CircuitBreaker } from '../../../../src/executors/remote/resilience/breaker.ts'
import { LatencyEstimate } from '../../../../src/executors/remote/resilience/call.ts'
import { FAIR_CHANCE_MIN_MS, withBreaker } from '../../../../src/executors/remote/resilience/circuit.ts'
import { ModelErrorCode } from '../../../../src/errors.ts'
import { UpstreamError } from '../../../../src/executors/remote/errors.ts'
import { outcome, upstream } from './fake-upstream.ts'

beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }))
afterEach(() => vi.useRealTimers())

describe('the circuit breaker as a layer', () => {
  it('opens after consecutive failures and then refuses at once (skipped CIRCUIT_OPEN) until reset_ms', async () => {
    const breaker = new CircuitBreaker({ failures: 2, resetMs: 1000, firstCallsMs: 250 })
    const { call, attempts } = upstream([{ after: 1, fail: 'final' }, { after: 1, fail: 'final' }, { after: 1, answer: 'back' }])
    const guarded = withBreaker(call, breaker, new LatencyEstimate())
    for (let i = 0; i < 2; i++) {
      outcome(guarded('x', new AbortController().signal, 5000))
      await vi.advanceTimersByTimeAsync(1)
    }
    expect(breaker.state).toBe('open')
    const refused = guarded('x', new AbortController().signal, 5000)
    await expect(refused).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', skipped: true })
    expect(attempts).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1000)
    const probe = outcome(guarded('x', new AbortController().signal, 5000))
    await vi.advanceTimersByTimeAsync(1)
    expect(probe.value).toBe('back')
    expect(breaker.state).toBe('closed')
  })

  it('a call cut off at the deadline counts as a failure only after a fair chance', async () => {
    const latency = new LatencyEstimate()
    latency.observe(20) // the upstream usually answers in 20 ms
    const cutOff = async (budgetMs: number): Promise<CircuitBreaker> => {
      const breaker = new CircuitBreaker({ failures: 1, resetMs: 1000, firstCallsMs: 250 })
      const { call } = upstream([{ after: 0, hang: true }])
      const caller = new AbortController()
      const start = performance.now()
      outcome(withBreaker(call, breaker, latency)('x', caller.signal, start + budgetMs))
      await vi.advanceTimersByTimeAsync(budgetMs)
      caller.abort(new Error('deadline'))
      await vi.advanceTimersByTimeAsync(0)
      return breaker
    }
    expect((await cutOff(FAIR_CHANCE_MIN_MS - 1)).state).toBe('closed') // a client's tiny budget
    expect((await cutOff(30)).state).toBe('closed') // less than twice what the upstream usually takes
    expect((await cutOff(45)).state).toBe('open') // a fair chance, and no answer
  })

  it('a probe the collector cancelled is not waited for, but goes on: its answer closes the circuit of a member slower than the decision', async () => {
    const breaker = new CircuitBreaker({ failures: 1, resetMs: 10, firstCallsMs: 250 })
    breaker.failure(false, performance.now())
    await vi.advanceTimersByTimeAsync(10)
    const { call, attempts } = upstream([{ after: 50, answer: 'slow but back' }])
    const caller = new AbortController()
    const probe = outcome(withBreaker(call, breaker, new LatencyEstimate())('x', caller.signal, performance.now() + 1000))
    expect(breaker.state).toBe('half-open')
    caller.abort(new Error('decided'))
    await vi.advanceTimersByTimeAsync(0)
    expect(probe).toMatchObject({ done: true, code: 'ABORTED' }) // the run does not wait for it
    expect(attempts[0]!.signal.aborted).toBe(false)
    expect(breaker.allow()).toBe(Admission.refused) // still the one probe in flight
    await vi.advanceTimersByTimeAsync(50)
    expect(breaker.state).toBe('closed')
    expect(breaker.allow()).toBe(Admission.call)
  })

  it('a cancelled probe that never answers is cut at its fair chance and opens the circuit again', async () => {
    // No answer yet, so its fair chance is first_calls_ms (300), past the caller's 100 ms deadline.
    const breaker = new CircuitBreaker({ failures: 1, resetMs: 10, firstCallsMs: 300 })
    breaker.failure(false, performance.now())
    await vi.advanceTimersByTimeAsync(10)
    const { call, attempts } = upstream([{ after: 0, hang: true }])
    const caller = new AbortController()
    outcome(withBreaker(call, breaker, new LatencyEstimate())('x', caller.signal, performance.now() + 100))
    caller.abort(new Error('decided'))
    await vi.advanceTimersByTimeAsync(299)
    expect(breaker.state).toBe('half-open')
    await vi.advanceTimersByTimeAsync(1)
    expect(attempts[0]!.signal.aborted).toBe(true)
    expect(breaker.state).toBe('open')
    expect(breaker.openedBecause).toBe('its probe failed')
    expect(vi.getTimerCount()).toBe(0)
  })

  it("a probe sent with a client's tiny budget runs on to its fair chance: a healthy upstream's answer closes the circuit", async () => {
    const breaker = new CircuitBreaker({ failures: 1, resetMs: 10, firstCallsMs: 250 })
    const latency = new LatencyEstimate()
    latency.observe(20) // fair chance: 40 ms
    breaker.failure(false, performance.now())
    await vi.advanceTimersByTimeAsync(10)
    const { call } = upstream([{ after: 30, answer: 'back' }])
    const caller = new AbortController()
    const probe = outcome(withBreaker(call, breaker, latency)('x', caller.signal, performance.now() + 6))
    await vi.advanceTimersByTimeAsync(6)
    caller.abort(new Error('deadline'))
    await vi.advanceTimersByTimeAsync(0)
    expect(probe).toMatchObject({ done: true, code: 'ABORTED' }) // the client had its 504
    expect(breaker.state).toBe('half-open')
    await vi.advanceTimersByTimeAsync(24)
    expect(breaker.state).toBe('closed')
  })

  it('before any answer, one call at a time is judged on first_calls_ms, whatever its budget; the others cut sooner are no verdict', async () => {
    const breaker = new CircuitBreaker({ failures: 1, resetMs: 1000, firstCallsMs: 100 })
    const { call, attempts } = upstream([{ after: 0, hang: true }, { after: 0, hang: true }])
    const guarded = withBreaker(call, breaker, new LatencyEstimate())
    const callers = [new AbortController(), new AbortController()]
    for (const caller of callers) outcome(guarded('x', caller.signal, performance.now() + 10))
    await vi.advanceTimersByTimeAsync(10)
    for (const caller of callers) caller.abort(new Error('deadline'))
    await vi.advanceTimersByTimeAsync(0)
    expect(attempts.map((a) => a.signal.aborted)).toEqual([false, true]) // the second: cut at its 10 ms, no verdict
    expect(breaker.state).toBe('closed')
    await vi.advanceTimersByTimeAsync(90)
    expect(attempts[0]!.signal.aborted).toBe(true) // the first had its 100 ms, and no answer
    expect(breaker.state).toBe('open')
    expect(breaker.openedBecause).toBe('1 consecutive failure')
  })

  it('a probe cut off at the run deadline carries the run deadline reason', async () => {
    const breaker = new CircuitBreaker({ failures: 1, resetMs: 10, firstCallsMs: 250 })
    breaker.failure(false, performance.now())
    await vi.advanceTimersByTimeAsync(10)
    const { call, attempts } = upstream([{ after: 0, hang: true }])
    const caller = new AbortController()
    const deadline = performance.now() + 100
    const latency = new LatencyEstimate()
    latency.observe(20) // a fair chance (40 ms) within the budget: the probe ends with the run
    const probe = withBreaker(call, breaker, latency)('x', caller.signal, deadline)
    const reason = new Error('deadline')
    setTimeout(() => caller.abort(reason), 100)
    await Promise.all([expect(probe).rejects.toBe(reason), vi.advanceTimersByTimeAsync(100)])
    expect(attempts[0]!.signal.reason).toBe(reason)
    expect(breaker.state).toBe('open')
  })

  it('a learner whose caller leaves before its deadline stops at its fair chance with no verdict: a member slower than first_calls_ms that usually loses is not failed', async () => {
    const breaker = new CircuitBreaker({ failures: 1, resetMs: 1000, firstCallsMs: 100 })
    const { call, attempts } = upstream([{ after: 400, answer: 'slow but sound' }])
    const caller = new AbortController()
    const answer = outcome(withBreaker(call, breaker, new LatencyEstimate())('x', caller.signal, performance.now() + 1000))
    await vi.advanceTimersByTimeAsync(10)
    caller.abort(new Error('decided')) // a faster member won
    await vi.advanceTimersByTimeAsync(0)
    expect(answer.code).toBe('ABORTED') // the caller stops waiting at once
    await vi.advanceTimersByTimeAsync(89)
    expect(attempts[0]!.signal.aborted).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(attempts[0]!.signal.aborted).toBe(true) // at its fair chance, not the caller's 1000 ms
    expect(breaker.state).toBe('closed')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a learner whose caller leaves after its fair chance, before its deadline, stops then with no verdict', async () => {
    const breaker = new CircuitBreaker({ failures: 1, resetMs: 1000, firstCallsMs: 100 })
    const { call, attempts } = upstream([{ after: 0, hang: true }])
    const caller = new AbortController()
    outcome(withBreaker(call, breaker, new LatencyEstimate())('x', caller.signal, performance.now() + 2000))
    await vi.advanceTimersByTimeAsync(300)
    caller.abort(new Error('decided'))
    await vi.advanceTimersByTimeAsync(0)
    expect(attempts[0]!.signal.aborted).toBe(true)
    expect(breaker.state).toBe('closed')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('only the probe frees the probe slot: a call from before the circuit opened, cancelled during half-open, lets no second probe through', async () => {
    const breaker = new CircuitBreaker({ failures: 1, resetMs: 10, firstCallsMs: 250 })
    const { call, attempts } = upstream([{ after: 0, hang: true }, { after: 1, fail: 'final' }, { after: 0, hang: true }])
    const guarded = withBreaker(call, breaker, new LatencyEstimate())
    const older = new AbortController()
    outcome(guarded('x', older.signal, performance.now() + 1000)) // in flight while the circuit is closed
    outcome(guarded('x', new AbortController().signal, performance.now() + 1000))
    await vi.advanceTimersByTimeAsync(1)
    expect(breaker.state).toBe('open')
    await vi.advanceTimersByTimeAsync(10)
    outcome(guarded('x', new AbortController().signal, performance.now() + 1000)) // the probe, in flight
    older.abort(new Error('decided'))
    await vi.advanceTimersByTimeAsync(0)
    const third = outcome(guarded('x', new AbortController().signal, performance.now() + 1000))
    await vi.advanceTimersByTimeAsync(0)
    expect(third.code).toBe('CIRCUIT_OPEN')
    expect(attempts).toHaveLength(3)
  })

  it("an input the upstream refused (HTTP 400, gRPC INVALID_ARGUMENT) is no verdict: one client's bad input cannot open the circuit", async () => {
    const breaker = new CircuitBreaker({ failures: 2, resetMs: 1000, firstCallsMs: 250 })
    const refused = (): Promise<string> => Promise.reject(new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, 'HTTP 400: bad input', false, true))
    const guarded = withBreaker(refused, breaker, new LatencyEstimate())
    for (let i = 0; i < 5; i++) await expect(guarded('x', new AbortController().signal, 5000)).rejects.toMatchObject({ code: 'UPSTREAM_ERROR' })
    expect(breaker.state).toBe('closed')
    // A half-open probe that meets a refused input frees its slot for the next one.
    breaker.failure(false, performance.now())
    breaker.failure(false, performance.now())
    await vi.advanceTimersByTimeAsync(1000)
    await expect(guarded('x', new AbortController().signal, 5000)).rejects.toMatchObject({ code: 'UPSTREAM_ERROR' })
    expect(breaker.state).toBe('half-open')
    expect(breaker.allow()).toBe(Admission.probe)
  })
})
