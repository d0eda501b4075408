import { describe, expect, it } from 'vitest'
import { TokenBucket } from '../../src/security/bucket.ts'

describe('TokenBucket', () => {
  it('lets a burst through, then one request per 1/rps seconds, saying when to retry', () => {
    const bucket = new TokenBucket({ rps: 2, burst: 3 }, 0)
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true, false])
    expect(bucket.retryAfterS).toBe(1)
    expect(bucket.take(499)).toBe(false) // 0.998 of a token
    expect(bucket.take(500)).toBe(true)
    expect(bucket.take(500)).toBe(false)
  })

  it('refills to the burst and no further after a quiet spell', () => {
    const bucket = new TokenBucket({ rps: 10, burst: 2 }, 0)
    expect(bucket.take(0) && bucket.take(0)).toBe(true)
    const after = [1, 2, 3].map(() => bucket.take(60_000))
    expect(after).toEqual([true, true, false])
  })

  it('rounds retry-after up to whole seconds for slow rates', () => {
    const bucket = new TokenBucket({ rps: 0.1, burst: 1 }, 0)
    expect(bucket.take(0)).toBe(true)
    expect(bucket.take(1000)).toBe(false)
    expect(bucket.retryAfterS).toBe(9)
  })
})
