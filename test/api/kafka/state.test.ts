// Stream mode's state in /readyz and specserve_stream_consuming: a broker outage that begins
// with messages in flight leaves intake paused behind answers the broker does not acknowledge,
// so the consumer fetches nothing and never sees the outage. The answers' retries say it, once
// they have lasted request_timeout_ms (a leader election's are over sooner): the state is
// `blocked`, last_error the produce's error, and the gauge 0.
import { describe, expect, it } from 'vitest'
import type { StreamScorer } from '../../../src/api/kafka/stream.ts'
import { scorerWithoutBroker } from './standins.ts'

const consuming = (scorer: StreamScorer): number | undefined => {
  let value: number | undefined
  scorer.collect({ counter() {}, gauge: (n: string, _help: string, rows: [unknown, number][]) => void (n === 'specserve_stream_consuming' && (value = rows[0]?.[1])) } as never)
  return value
}

/** `failingForMs`: how long the answers retried now have been failing (none: no retries). */
async function scorerWith(intakeState: string, retrying: number, produceError: string | null, failingForMs?: number): Promise<StreamScorer> {
  const { scorer } = await scorerWithoutBroker()
  const parts = scorer as unknown as { intake: object; sender: object }
  Object.assign(parts.intake, { state: intakeState, lastError: null, reopens: 0, consumerErrors: 0, assignments: () => [], ownedLag: () => [] })
  Object.assign(parts.sender, { retrying, lastError: produceError, failingSince: failingForMs === undefined ? Number.NaN : performance.now() - failingForMs })
  return scorer
}

const TIMEOUT_MS = 5000 // request_timeout_ms's default, the settings scorerWithoutBroker uses

describe('stream mode state', () => {
  it('is blocked, with the produce error and the consuming gauge at 0, once answers have been retried for request_timeout_ms', async () => {
    const scorer = await scorerWith('consuming', 3, 'connect ECONNREFUSED 127.0.0.1:9092', TIMEOUT_MS + 1)
    expect(scorer.status()).toMatchObject({ state: 'blocked', last_error: 'connect ECONNREFUSED 127.0.0.1:9092', produce_retrying: 3 })
    expect(consuming(scorer)).toBe(0)
  })

  it('is consuming while retries are younger than request_timeout_ms (a leader election)', async () => {
    const scorer = await scorerWith('consuming', 1, 'NOT_LEADER_OR_FOLLOWER', 300)
    expect(scorer.status()).toMatchObject({ state: 'consuming', last_error: null, produce_retrying: 1 })
    expect(consuming(scorer)).toBe(1)
  })

  it('is consuming, gauge 1, once every answer is acknowledged', async () => {
    const scorer = await scorerWith('consuming', 0, null)
    expect(scorer.status()).toMatchObject({ state: 'consuming', last_error: null })
    expect(consuming(scorer)).toBe(1)
  })

  it("keeps the consumer's own state and error when it is reconnecting", async () => {
    const scorer = await scorerWith('reconnecting', 1, 'produce failed', TIMEOUT_MS + 1)
    Object.assign((scorer as unknown as { intake: object }).intake, { lastError: 'joinGroup failed' })
    expect(scorer.status()).toMatchObject({ state: 'reconnecting', last_error: 'joinGroup failed' })
    expect(consuming(scorer)).toBe(0)
  })
})
