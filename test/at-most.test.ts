// atMost: shutdown steps that may hang (a registry close, a telemetry flush to an endpoint
// that is down) are waited for up to a bound, never longer, and never past their end.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { atMost, orAbort } from '../src/at-most.ts'

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
