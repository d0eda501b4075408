// The shared deadline queues, on a fake clock: every time below is exact.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Deadlines, type Expiring } from '../../src/starter/deadlines.ts'

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
})
afterEach(() => {
  vi.useRealTimers()
})

/** An entry due `inMs` from now that notes when it expired. */
function due(inMs: number, expired: Map<string, number>, name: string, then?: () => void): Expiring {
  return {
    deadline: performance.now() + inMs,
    expire() {
      expired.set(name, performance.now())
      then?.()
    },
  }
}

describe('deadlines', () => {
  it('expires each entry at its deadline, in order, on one timer per budget', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    for (let i = 0; i < 40; i++) {
      deadlines.of(50).add(due(50, expired, `a${i}`))
      await vi.advanceTimersByTimeAsync(1)
    }
    deadlines.of(80).add(due(80, expired, 'b'))
    expect(vi.getTimerCount()).toBe(2)
    await vi.advanceTimersByTimeAsync(200)
    expect(expired.size).toBe(41)
    for (let i = 0; i < 40; i++) expect(expired.get(`a${i}`)).toBe(50 + i)
    expect(expired.get('b')).toBe(40 + 80)
    expect(vi.getTimerCount()).toBe(0)
    expect(deadlines.size).toBe(0)
  })

  it('never expires an entry removed first, and holds no timer once none waits', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    const queue = deadlines.of(30)
    const slots = ['a', 'b', 'c'].map((name) => queue.add(due(30, expired, name)))
    queue.remove(slots[1]!) // the middle one
    queue.remove(slots[0]!) // then the head
    await vi.advanceTimersByTimeAsync(30)
    expect([...expired.keys()]).toEqual(['c'])
    queue.remove(slots[2]!) // after it expired: a no-op
    const d = deadlines.of(30)
    const slot = d.add(due(30, expired, 'd'))
    d.remove(slot)
    expect(vi.getTimerCount()).toBe(0)
    expect(deadlines.size).toBe(0)
    await vi.advanceTimersByTimeAsync(100)
    expect(expired.has('d')).toBe(false)
  })

  it('keeps slots valid while a long run of ended entries is cut from the front', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    const queue = deadlines.of(1000)
    const window: number[] = []
    // 32 waiting at a time, 5,000 through: the queue's array is cut down many times meanwhile.
    for (let i = 0; i < 5000; i++) {
      window.push(queue.add(due(1000, expired, `r${i}`)))
      if (window.length > 32) queue.remove(window.shift()!)
    }
    await vi.advanceTimersByTimeAsync(1000)
    expect([...expired.keys()]).toEqual(Array.from({ length: 32 }, (_, i) => `r${4968 + i}`))
  })

  it('lets budgets a fraction of a millisecond apart share a queue, each decided within 1 ms', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    deadlines.of(20.9).add(due(20.9, expired, 'late'))
    deadlines.of(20.1).add(due(20.1, expired, 'early'))
    expect(deadlines.size).toBe(1)
    await vi.advanceTimersByTimeAsync(25)
    expect(Math.abs(expired.get('early')! - 20.1)).toBeLessThan(1)
    expect(Math.abs(expired.get('late')! - 20.9)).toBeLessThan(1)
  })

  it('takes entries queued while another expires', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    deadlines.of(10).add(due(10, expired, 'first', () => deadlines.of(10).add(due(10, expired, 'second'))))
    await vi.advanceTimersByTimeAsync(30)
    expect(expired.get('first')).toBe(10)
    expect(expired.get('second')).toBe(20)
  })
})
