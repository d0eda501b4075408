// The fast unary path's deadlines: calls whose request is still arriving are ended at their
// deadline (not a sweep period later), by one timer armed for the earliest deadline.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DeadlineSweep, type Expiring } from '../../../src/api/grpc/deadline-sweep.ts'

const START = 1_000_000
let expired: string[]

class Call implements Expiring {
  readonly name: string
  readonly due: number
  constructor(name: string, inMs: number) {
    this.name = name
    this.due = Date.now() + inMs
  }
  expire(now: number): void {
    expired.push(`${this.name}@${now - START}`)
  }
}

beforeEach(() => {
  vi.useFakeTimers({ now: START })
  expired = []
})

afterEach(() => {
  vi.restoreAllMocks()
  vi.useRealTimers()
})

describe('DeadlineSweep', () => {
  it('ends each call at its own deadline, to the millisecond, whatever order they came in', async () => {
    const sweep = new DeadlineSweep<Call>()
    sweep.add(new Call('late', 250))
    sweep.add(new Call('early', 40))
    sweep.add(new Call('middle', 120))
    await vi.advanceTimersByTimeAsync(39)
    expect(expired).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(expired).toEqual(['early@40'])
    await vi.advanceTimersByTimeAsync(210)
    expect(expired).toEqual(['early@40', 'middle@120', 'late@250'])
    expect(sweep.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a call deleted before its deadline (its request came in) is never ended, and no timer is left for it', async () => {
    const sweep = new DeadlineSweep<Call>()
    const done = new Call('done', 50)
    sweep.add(done)
    sweep.add(new Call('stalled', 80))
    sweep.delete(done)
    await vi.advanceTimersByTimeAsync(200)
    expect(expired).toEqual(['stalled@80'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('one timer for many calls with the same timeout: later deadlines arm nothing new', () => {
    const sweep = new DeadlineSweep<Call>()
    const spy = vi.spyOn(globalThis, 'setTimeout')
    for (let i = 0; i < 100; i++) {
      sweep.add(new Call(`c${i}`, 20_000))
      vi.advanceTimersByTime(1)
    }
    expect(spy).toHaveBeenCalledTimes(1)
    expect(vi.getTimerCount()).toBe(1)
  })

  it("a deadline past setTimeout's longest delay waits rather than firing at once", async () => {
    const sweep = new DeadlineSweep<Call>()
    sweep.add(new Call('far', 2 ** 31 + 5000))
    await vi.advanceTimersByTimeAsync(2 ** 31 - 1)
    expect(expired).toEqual([])
    await vi.advanceTimersByTimeAsync(5001)
    expect(expired).toEqual([`far@${2 ** 31 + 5000}`])
  })
})
