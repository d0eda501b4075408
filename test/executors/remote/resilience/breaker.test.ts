// The breaker and the retry budget on their own, with an explicit clock: the breaker's
// states, and the budget's cap on the extra load retries and hedges can add.
import { describe, expect, it } from 'vitest'
import { Admission, CircuitBreaker } from '../../../../src/executors/remote/resilience/breaker.ts'
import { RetryBudget } from '../../../../src/executors/remote/resilience/retry-budget.ts'

describe('circuit breaker', () => {
  it('opens after N consecutive failures, lets one probe through after reset_ms, closes on its success', () => {
    const b = new CircuitBreaker({ failures: 3, resetMs: 1000, firstCallsMs: 250 })
    b.failure(false, 0)
    b.success() // a success in between resets the count
    for (let t = 1; t <= 3; t++) b.failure(false, t)
    expect(b.state).toBe('open')
    expect(b.allow(500)).toBe(Admission.refused)
    expect(b.retryInMs(500)).toBe(503)
    expect(b.allow(1003)).toBe(Admission.probe)
    expect(b.state).toBe('half-open')
    expect(b.allow(1004)).toBe(Admission.refused) // one probe at a time
    b.success(true)
    expect(b.state).toBe('closed')
    expect(b.allow(1005)).toBe(Admission.call)
  })

  it('a failed probe opens it again; a cancelled probe frees the slot', () => {
    const b = new CircuitBreaker({ failures: 1, resetMs: 100, firstCallsMs: 250 })
    b.failure(false, 0)
    expect(b.allow(100)).toBe(Admission.probe)
    b.release(true)
    expect(b.allow(101)).toBe(Admission.probe)
    b.failure(true, 101)
    expect(b.state).toBe('open')
    expect(b.allow(150)).toBe(Admission.refused)
  })

  it('only the probe frees the probe slot: an older call ending during half-open lets no second probe through', () => {
    const b = new CircuitBreaker({ failures: 1, resetMs: 100, firstCallsMs: 250 })
    expect(b.allow(0)).toBe(Admission.call) // started while closed, still in flight
    b.failure(false, 1) // another call fails: open
    expect(b.allow(101)).toBe(Admission.probe)
    b.release() // the older call is cancelled
    expect(b.allow(102)).toBe(Admission.refused)
    b.failure(false, 103) // or fails: the probe still decides
    expect(b.state).toBe('half-open')
    expect(b.allow(104)).toBe(Admission.refused)
    b.success(true)
    expect(b.state).toBe('closed')
  })

  it('a call sent before the circuit opened that fails late does not put the probe off', () => {
    const b = new CircuitBreaker({ failures: 2, resetMs: 100, firstCallsMs: 250 })
    b.failure(false, 0)
    b.failure(false, 10) // open at 10: the probe is due at 110
    b.failure(false, 60) // stragglers, sent while closed
    b.failure(false, 90)
    expect(b.retryInMs(90)).toBe(20)
    expect(b.allow(110)).toBe(Admission.probe)
  })

  it('a call sent before the circuit opened that succeeds late closes it neither while open nor while half-open', () => {
    const b = new CircuitBreaker({ failures: 1, resetMs: 100, firstCallsMs: 250 })
    b.failure(false, 0)
    b.success() // open: the straggler's answer says nothing the probe has tested
    expect(b.state).toBe('open')
    expect(b.allow(50)).toBe(Admission.refused)
    expect(b.allow(100)).toBe(Admission.probe)
    b.success() // half-open: still only the probe decides
    expect(b.state).toBe('half-open')
    expect(b.allow(101)).toBe(Admission.refused)
    b.failure(true, 102)
    expect(b.state).toBe('open')
    expect(b.allow(150)).toBe(Admission.refused)
    expect(b.allow(202)).toBe(Admission.probe)
  })

  it('once closed again, failures count from zero', () => {
    const b = new CircuitBreaker({ failures: 2, resetMs: 100, firstCallsMs: 250 })
    b.failure(false, 0)
    b.failure(false, 1)
    expect(b.allow(101)).toBe(Admission.probe)
    b.success(true)
    b.failure(false, 102)
    expect(b.state).toBe('closed')
    b.failure(false, 103)
    expect(b.state).toBe('open')
  })
})

describe('retry budget', () => {
  it('never lets retries exceed the ratio of first attempts, beyond the per-second allowance', () => {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 2 })
    let retries = 0
    for (let i = 0; i < 100; i++) {
      budget.deposit()
      if (budget.withdraw(10)) retries++ // every call fails and wants a retry, all in one second
    }
    // The allowance, plus at most one per five first attempts (float sums may round one down).
    expect(retries).toBeLessThanOrEqual(2 + 100 * 0.2)
    expect(retries).toBeGreaterThanOrEqual(2 + 100 * 0.2 - 1)
  })
})
