// atMost: shutdown steps that may hang (a registry close, a telemetry flush to an endpoint
// that is down) are waited for up to a bound, never longer, and never past their end. orLate
// and limited: work given a bound past which the caller stops waiting, with an error. A bound
// past the longest timer Node.js sets (2^31-1 ms: a longer one fires at once) is none.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { atMost, limited, orAbort, orLate } from '../src/at-most.ts'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

/** Whether the promise has settled, read after the microtasks queued so far have run. */
function tracked(promise: Promise<void>): () => boolean {
  let done = false
  void promise.then(() => (done = true))
  return () => done
}

describe('atMost', () => {
  it('gives up on work that never ends when the time is up, not before', async () => {
    const done = tracked(atMost(new Promise(() => undefined), 2000))
    await vi.advanceTimersByTimeAsync(1999)
    expect(done()).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(done()).toBe(true)
  })

  it('ends with the work when it ends first, and leaves no timer behind', async () => {
    let finish!: () => void
    const done = tracked(atMost(new Promise<void>((resolve) => (finish = resolve)), 2000))
    await vi.advanceTimersByTimeAsync(500)
    finish()
    await vi.advanceTimersByTimeAsync(0)
    expect(done()).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a failure of the work counts as its end: the caller handles the error on the work itself', async () => {
    const failing = Promise.reject(new Error('exporter down'))
    const done = tracked(atMost(failing, 2000))
    await vi.advanceTimersByTimeAsync(0)
    expect(done()).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
    await expect(failing).rejects.toThrow('exporter down')
  })

  it('a bound past the longest timer (2^31-1 ms) or Infinity is none: such a timer would fire at once', async () => {
    let finish!: () => void
    const work = new Promise<void>((resolve) => (finish = resolve))
    const done = [tracked(atMost(work, 2 ** 31)), tracked(atMost(work, Infinity))]
    await vi.advanceTimersByTimeAsync(60_000)
    expect(done.map((d) => d())).toEqual([false, false])
    expect(vi.getTimerCount()).toBe(0)
    finish()
    await vi.advanceTimersByTimeAsync(0)
    expect(done.map((d) => d())).toEqual([true, true])
  })

  it('0 ms (no time left in the grace) waits no longer than the next timer turn', async () => {
    const done = tracked(atMost(new Promise(() => undefined), 0))
    await vi.advanceTimersByTimeAsync(0)
    expect(done()).toBe(true)
  })
})

describe('orAbort', () => {
  it('rejects with the signal\'s reason when it aborts first; the work\'s later rejection is handled', async () => {
    const controller = new AbortController()
    let fail!: (err: Error) => void
    const work = new Promise<number>((_, reject) => (fail = reject))
    const waited = orAbort(work, controller.signal)
    controller.abort(new Error('over its limit'))
    await expect(waited).rejects.toThrow('over its limit')
    fail(new Error('the run failed later'))
    await Promise.resolve()
  })

  it('settles as the work does before an abort, and rejects at once for a signal aborted already', async () => {
    const controller = new AbortController()
    await expect(orAbort(Promise.resolve(7), controller.signal)).resolves.toBe(7)
    await expect(orAbort(Promise.reject(new Error('bad')), controller.signal)).rejects.toThrow('bad')
    controller.abort(new Error('gone'))
    await expect(orAbort(new Promise<number>(() => undefined), controller.signal)).rejects.toThrow('gone')
  })
})

describe('orLate and limited', () => {
  it('orLate rejects with its error when the time is up, not before; the work\'s later failure is handled', async () => {
    let fail!: (err: Error) => void
    const work = new Promise<number>((_, reject) => (fail = reject))
    const waited = orLate(work, 100, () => new Error('late'))
    const outcome = expect(waited).rejects.toThrow('late')
    await vi.advanceTimersByTimeAsync(99)
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    await outcome
    fail(new Error('the run failed later'))
    await Promise.resolve()
  })

  it('orLate settles as the work does, leaving no timer; past the longest timer it sets none', async () => {
    await expect(orLate(Promise.resolve(7), 100, () => new Error('late'))).resolves.toBe(7)
    await expect(orLate(Promise.reject(new Error('bad')), 100, () => new Error('late'))).rejects.toThrow('bad')
    expect(vi.getTimerCount()).toBe(0)
    const never = orLate(new Promise<number>(() => undefined), 2 ** 31, () => new Error('late'))
    expect(vi.getTimerCount()).toBe(0)
    const done = tracked(never.then(() => undefined, () => undefined))
    await vi.advanceTimersByTimeAsync(60_000)
    expect(done()).toBe(false)
  })

  it('limited aborts the work\'s signal with its reason when the time is up, and rejects with it', async () => {
    let seen: AbortSignal | undefined
    const waited = limited(50, 'no answer within 0.05 s', (signal) => ((seen = signal), new Promise<number>(() => undefined)))
    const outcome = expect(waited).rejects.toThrow('no answer within 0.05 s')
    await vi.advanceTimersByTimeAsync(50)
    await outcome
    expect(seen!.aborted).toBe(true)
    expect((seen!.reason as Error).message).toBe('no answer within 0.05 s')
  })

  it('limited starts its timer before the work: work given the same limit (a gRPC call\'s deadline) ends after it, and the error is limited\'s', async () => {
    const waited = limited(100, 'no answer within 0.1 s (ours)', () => new Promise<number>((_, reject) => setTimeout(() => reject(new Error('DEADLINE_EXCEEDED (theirs)')), 100)))
    const outcome = expect(waited).rejects.toThrow('no answer within 0.1 s (ours)')
    await vi.advanceTimersByTimeAsync(100)
    await outcome
  })

  it('limited passes on a synchronous throw of the work as a rejection, leaving no timer', async () => {
    const thrown = new Error('bad call')
    await expect(limited(50, 'late', () => { throw thrown })).rejects.toBe(thrown)
    await expect(limited(50, 'late', () => Promise.resolve(3))).resolves.toBe(3)
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('orLate and limited with no limit (past the longest timer, Infinity included)', () => {
  /** How many promises `new Promise` made while `call` ran (the work's own made before it). */
  function promisesMade<T>(call: () => T): { result: T; made: number } {
    let made = 0
    vi.stubGlobal('Promise', new Proxy(Promise, { construct: (target, args) => (made++, Reflect.construct(target, args) as object) }))
    try {
      return { result: call(), made }
    } finally {
      vi.unstubAllGlobals()
    }
  }

  it('return the work\'s own promise, settled as it is, with no promise or timer of theirs', async () => {
    for (const ms of [Infinity, 2 ** 31]) {
      const resolved = Promise.resolve(7)
      const rejected = Promise.reject(new Error('bad'))
      rejected.catch(() => undefined) // read below, after a turn
      const calls = [
        promisesMade(() => orLate(resolved, ms, () => new Error('late'))),
        promisesMade(() => limited(ms, 'late', () => resolved)),
        promisesMade(() => orLate(rejected, ms, () => new Error('late'))),
        promisesMade(() => limited(ms, 'late', () => rejected)),
      ]
      expect(calls.map((c) => c.made)).toEqual([0, 0, 0, 0])
      calls.forEach((c, i) => expect(c.result, `call ${i}`).toBe([resolved, resolved, rejected, rejected][i]))
      expect(vi.getTimerCount()).toBe(0)
      await expect(calls[0]!.result).resolves.toBe(7)
      await expect(calls[3]!.result).rejects.toThrow('bad')
    }
  })

  it('limited gives the work a signal that never aborts, and passes on a synchronous throw as a rejection', async () => {
    let seen: AbortSignal | undefined
    let finish!: (value: number) => void
    const work = new Promise<number>((resolve) => (finish = resolve))
    const waited = limited(Infinity, 'late', (signal) => ((seen = signal), work))
    expect(waited).toBe(work)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(seen!.aborted).toBe(false)
    finish(3)
    await expect(waited).resolves.toBe(3)
    await expect(limited(Infinity, 'late', () => { throw new Error('bad call') })).rejects.toThrow('bad call')
  })
})
