// The shared deadline queues, on a fake clock: every time below is exact.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Deadlines, EXPIRE, type Expiring } from '../../src/starter/deadlines.ts'

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
    [EXPIRE]() {
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

  it('keeps slots valid while the spent front of the queue is cut off, wherever entries end', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    const queue = deadlines.of(1000)
    const waiting = new Map<string, number>()
    let seed = 7
    const pick = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n
    // 5,000 through, 32 waiting at a time, each removed from anywhere in the queue: the array is cut down many times meanwhile.
    for (let i = 0; i < 5000; i++) {
      waiting.set(`r${i}`, queue.add(due(1000, expired, `r${i}`)))
      if (waiting.size > 32) {
        const name = [...waiting.keys()][pick(waiting.size)]!
        queue.remove(waiting.get(name)!)
        waiting.delete(name)
      }
    }
    await vi.advanceTimersByTimeAsync(1000)
    expect(new Set(expired.keys())).toEqual(new Set(waiting.keys()))
    expect(vi.getTimerCount()).toBe(0)
  })

  it('keeps budgets a fraction of a millisecond apart apart, each decided by its deadline', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    deadlines.of(20.9).add(due(20.9, expired, 'later'))
    deadlines.of(20.1).add(due(20.1, expired, 'sooner'))
    expect(deadlines.size).toBe(2)
    await vi.advanceTimersByTimeAsync(25)
    for (const [name, deadline] of [['sooner', 20.1], ['later', 20.9]] as const) {
      expect(expired.get(name)).toBeGreaterThan(deadline - 1)
      expect(expired.get(name)).toBeLessThanOrEqual(deadline)
    }
  })

  it('takes entries ended and queued while another expires, on one timer', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    const queue = deadlines.of(10)
    let b = -1
    queue.add(due(10, expired, 'a', () => {
      queue.remove(b)
      deadlines.of(10).add(due(10, expired, 'c'))
    }))
    b = queue.add(due(10, expired, 'b'))
    queue.add(due(10, expired, 'd'))
    await vi.advanceTimersByTimeAsync(10)
    expect([...expired]).toEqual([['a', 10], ['d', 10]])
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(20)
    expect(expired.get('c')).toBe(20)
    expect(expired.has('b')).toBe(false)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('still expires the others when one expiry throws', async () => {
    const deadlines = new Deadlines()
    const expired = new Map<string, number>()
    deadlines.of(10).add(due(10, expired, 'a', () => {
      throw new Error('boom')
    }))
    deadlines.of(10).add(due(10, expired, 'b'))
    await expect(vi.advanceTimersByTimeAsync(10)).rejects.toThrow('boom')
    await vi.advanceTimersByTimeAsync(1)
    expect([...expired.keys()]).toEqual(['a', 'b'])
    expect(vi.getTimerCount()).toBe(0)
  })
})
