// atMost: shutdown steps that may hang (a registry close, a telemetry flush to an endpoint
// that is down) are waited for up to a bound, never longer, and never past their end.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { atMost } from '../src/at-most.ts'

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
