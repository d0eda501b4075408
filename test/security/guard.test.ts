// The guard's credential cache: one entry per credential, however its header is spaced or
// cased, so that one valid key cannot fill the cache and push every other caller out (the same
// guard answers REST and gRPC); and its rate-limit buckets: every call counts, and no crowd of
// JWT callers pushes out a configured caller's bucket.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/errors.ts'
import { Buckets, Guard, MAX_CACHED } from '../../src/security/guard.ts'
import { configFrom } from '../helpers.ts'
import '../starter/scripted.ts'

const hash = (key: string): string => createHash('sha256').update(key).digest('hex')
const guard = (): Guard =>
  new Guard(
    configFrom(`models: { a: { kind: scripted } }
ensembles: { e: { strategy: deadline-fallback, models: [a] } }
auth:
  api_keys:
    - { id: greedy, sha256: "${hash('greedy-key')}", scopes: [read] }
    - { id: other, sha256: "${hash('other-key')}", scopes: [read] }
`).auth!,
  )
const cached = (g: Guard): ReadonlyMap<string, unknown> => (g as unknown as { cache: Map<string, unknown> }).cache
const refusal = (f: () => unknown): string => {
  try {
    f()
  } catch (err) {
    if (err instanceof GatewayError) return `${err.code}: ${err.message}`
    throw err
  }
  return 'accepted'
}

describe('the credential cache', () => {
  it(`${MAX_CACHED} whitespace and case variants of one key are one entry: the other callers stay cached`, () => {
    const g = guard()
    expect(g.check('Bearer other-key', 'read', '')).toMatchObject({ id: 'other' })
    for (let i = 1; i <= MAX_CACHED; i++) {
      const variant = `${i % 2 ? 'Bearer' : 'bEaReR'}${' '.repeat(i)}greedy-key`
      expect(g.check(variant, 'read', '')).toMatchObject({ id: 'greedy' })
    }
    expect(cached(g).size).toBe(2)
    expect([...cached(g).keys()]).toEqual(['Bearer other-key', 'Bearer greedy-key'])
  })

  it('reads the token after the scheme trimmed; refuses another scheme or a scheme without a token', () => {
    const g = guard()
    expect(g.check('bearer   other-key  ', 'read', '')).toMatchObject({ id: 'other' })
    expect(g.check('Bearer other-key', 'read', '')).toBe(g.check('BEARER other-key', 'read', ''))
    expect(refusal(() => g.check('Basic b3RoZXIta2V5', 'read', ''))).toMatch(/^UNAUTHENTICATED: unsupported authorization scheme/)
    expect(refusal(() => g.check('Bearer    ', 'read', ''))).toMatch(/^UNAUTHENTICATED: unsupported authorization scheme/)
    expect(refusal(() => g.check('Bearer other-key-x', 'read', ''))).toBe('UNAUTHENTICATED: unknown API key')
    expect(cached(g).size).toBe(1)
  })
})

describe('the rate-limit buckets', () => {
  /** `adminToken`: SPECSERVE_ADMIN_TOKEN's value. */
  const limited = (buckets?: Buckets, adminToken?: string): Guard =>
    new Guard(
      configFrom(`models: { a: { kind: scripted } }
ensembles: { e: { strategy: deadline-fallback, models: [a] } }
auth:
  rate_limit: { rps: 0.01, burst: 1 }
  api_keys:
    - { id: reader, sha256: "${hash('reader-key')}", scopes: [read] }
`).auth!,
      buckets,
      adminToken,
    )

  it('SPECSERVE_ADMIN_TOKEN draws on a bucket of its own at auth.rate_limit, as every API key does', () => {
    const g = limited(undefined, 'admin-s3cret')
    expect(g.check('Bearer admin-s3cret', 'admin', '')).toMatchObject({ id: 'admin-token' })
    expect(refusal(() => g.check('Bearer admin-s3cret', 'admin', ''))).toMatch(/^RATE_LIMITED: admin-token is over its rate limit of 0.01\/s/)
    expect(g.check('Bearer reader-key', 'read', '')).toMatchObject({ id: 'reader' }) // its own bucket, not the admin token's
  })

  it('a call its scopes refuse still takes a token: a caller at its limit is RATE_LIMITED whatever it asks for', () => {
    const g = limited()
    expect(refusal(() => g.check('Bearer reader-key', 'admin', ''))).toMatch(/^PERMISSION_DENIED/)
    expect(refusal(() => g.check('Bearer reader-key', 'read', ''))).toMatch(/^RATE_LIMITED: reader is over its rate limit/)
    expect(refusal(() => g.check('Bearer reader-key', 'admin', ''))).toMatch(/^RATE_LIMITED/)
  })

  it(`an API key's bucket outlives ${MAX_CACHED} JWT callers' and a reload; the JWT caller verified last is kept longest`, () => {
    const buckets = new Buckets()
    const g = limited(buckets)
    expect(g.check('Bearer reader-key', 'read', '')).toMatchObject({ id: 'reader' })
    const bucketFor = (id: string) => (g as unknown as { bucketFor: (id: string, rate: object, now: number, map: Map<string, unknown>) => unknown }).bucketFor(id, { rps: 1, burst: 1 }, 0, buckets.jwt)
    const first = bucketFor('jwt:0')
    for (let i = 1; i < MAX_CACHED; i++) bucketFor(`jwt:${i}`)
    expect(bucketFor('jwt:0')).toBe(first) // verified again: its own bucket, now the newest
    bucketFor('jwt:new')
    expect([buckets.jwt.size, buckets.jwt.has('jwt:0'), buckets.jwt.has('jwt:1')]).toEqual([MAX_CACHED, true, false])
    // A reload's guard finds the key's bucket as it was: empty, not refilled.
    expect(refusal(() => limited(buckets).check('Bearer reader-key', 'read', ''))).toMatch(/^RATE_LIMITED/)
  })
})
