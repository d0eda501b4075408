// Stream mode's shutdown: the grace period bounds it, even when the client never settles an
// offset commit (one still pending when its message stream ended, e.g. while the consumer was
// rejoining the group after a broker outage). That message is scored again later. Predicts
// still running when the grace is over are cancelled, but the messages that did finish and
// were published still get their offsets committed, up to the first unfinished one.
import type { Message } from '@platformatic/kafka'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { StreamScorer } from '../../../src/api/kafka/stream.ts'
import { GatewayError } from '../../../src/errors.ts'
import type { Gateway } from '../../../src/gateway.ts'
import { kafkaSettings } from '../../../src/kafka/config.ts'
import { silentLogger, type PredictResult } from '../../../src/types.ts'

type Msg = Message<string, string, string, string>

const GRACE_MS = 3000
const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'], shutdown_grace_ms: GRACE_MS, stream: { input_topic: 'requests' } } }, '/tmp')!
/** A commit's round trip to the group coordinator. */
const COMMIT_MS = 5

/**
 * A scorer whose consumer, producer and sender are stand-ins: no broker, nothing sent. A
 * message whose value is `hang` runs a predict that ends only when cancelled; any other is
 * refused (not a valid request) and its dead letter is acknowledged `ackAfterMs[offset]` ms later
 * (at once by default).
 */
async function scorerWithoutBroker(ackAfterMs: Record<string, number> = {}): Promise<{ scorer: StreamScorer; consumerClosed: () => boolean }> {
  const scorer = new StreamScorer({} as Gateway, settings, silentLogger)
  const parts = scorer as unknown as { intake: { close(): Promise<void> }; producer: { close(force: boolean): Promise<void> } }
  // The real ones were never started (no connection); closed so they leave nothing behind.
  await parts.intake.close()
  await parts.producer.close(true)
  let closed = false
  const intake = { stop() {}, close: () => ((closed = true), Promise.resolve()), owns: () => true, pause() {}, resume() {} }
  const acknowledged = (message: Msg): Promise<boolean> => new Promise((resolve) => setTimeout(() => resolve(true), ackAfterMs[String(message.offset)] ?? 0))
  const startPredict = (message: Msg): unknown => {
    if (message.value !== 'hang') throw new GatewayError('BAD_REQUEST', 'not a predict request')
    const { promise, resolve } = Promise.withResolvers<PredictResult>()
    return { result: promise, cancel: () => resolve({ error: { code: 'CANCELLED' } } as PredictResult) }
  }
  Object.assign(scorer, { intake, producer: { close: () => Promise.resolve() }, sender: { deadLetter: acknowledged }, startPredict })
  return { scorer, consumerClosed: () => closed }
}

/**
 * The group's committed offsets (the next offset to read), per partition, as the broker has them,
 * behind a consumer that works as the client does: a commit is sent at once, or, while the
 * consumer is rejoining the group, once it has rejoined; one sent lands a round trip later,
 * one not sent yet when the consumer is closed never does.
 */
function groupOffsets(consumerClosed: () => boolean, rejoining: { from: number; until: number } = { from: Infinity, until: Infinity }) {
  const committed = new Map<number, bigint>()
  /** When each commit was asked for. */
  const calls: number[] = []
  const commit = (partition: number, offset: bigint) => (): Promise<void> => {
    const now = Date.now()
    calls.push(now)
    const sendAt = now >= rejoining.from && now < rejoining.until ? rejoining.until : now
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        if (consumerClosed()) return reject(new Error('the consumer is closed'))
        setTimeout(() => (committed.set(partition, offset + 1n), resolve()), COMMIT_MS)
      }, sendAt - now),
    )
  }
  const message = (partition: number, offset: bigint, value: string): Msg => ({ topic: 'requests', partition, offset, key: 'k', value, commit: commit(partition, offset) }) as unknown as Msg
  return { committed, calls, message }
}

const accept = (scorer: StreamScorer, message: Msg): void => (scorer as unknown as { accept(m: Msg): void }).accept(message)

afterEach(() => vi.useRealTimers())

describe('stream mode shutdown', () => {
  it('returns once the grace period is over although an offset commit never settles', async () => {
    const { scorer } = await scorerWithoutBroker()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    let commits = 0
    const message = { topic: 'requests', partition: 0, offset: 5n, key: 'k', value: 'not JSON', commit: () => (commits++, new Promise<void>(() => {})) }
    accept(scorer, message as unknown as Msg)
    await vi.advanceTimersByTimeAsync(0)
    expect(commits).toBe(1)

    let closed = false
    void scorer.close().then(() => (closed = true))
    await vi.advanceTimersByTimeAsync(2999)
    expect(closed).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(closed).toBe(true)
  })

  it('when predicts use the whole grace, still commits what finished and was published, never past an unfinished message', async () => {
    // Dead letters acknowledged: offsets 3 and 6 at once, 9 just before the grace ends, 20 just
    // after (its produce was on its way when the grace ended). The group is rebalancing as the
    // grace ends (another member joining, in a rolling restart): the last commits go once it is done.
    const { scorer, consumerClosed } = await scorerWithoutBroker({ '9': GRACE_MS - 2, '20': GRACE_MS + 2 })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    const { committed, message } = groupOffsets(consumerClosed, { from: GRACE_MS - 50, until: GRACE_MS + 100 })
    accept(scorer, message(0, 5n, 'hang'))
    accept(scorer, message(0, 6n, 'poison')) // finished, but behind the unfinished 5
    accept(scorer, message(1, 9n, 'poison'))
    accept(scorer, message(2, 3n, 'poison'))
    accept(scorer, message(3, 20n, 'poison'))
    await vi.advanceTimersByTimeAsync(0)

    let closed = false
    void scorer.close().then(() => (closed = true))
    await vi.advanceTimersByTimeAsync(GRACE_MS + 1000)
    expect(closed).toBe(true)
    expect(Object.fromEntries(committed)).toEqual({ 1: 10n, 2: 4n, 3: 21n })
    expect(consumerClosed()).toBe(true)
  })

  it('gives the final commits a bounded time past the grace: what has not ended or landed by then is left uncommitted', async () => {
    // Offset 1's answer is acknowledged long after the grace; offset 7's commit never settles.
    const { scorer, consumerClosed } = await scorerWithoutBroker({ '1': GRACE_MS + 60_000 })
    const { committed, calls, message } = groupOffsets(consumerClosed)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    accept(scorer, message(0, 0n, 'hang'))
    accept(scorer, message(1, 1n, 'poison'))
    accept(scorer, { ...message(2, 7n, 'poison'), commit: () => new Promise<void>(() => {}) } as Msg)
    await vi.advanceTimersByTimeAsync(0)

    let closedAt = -1
    void scorer.close().then(() => (closedAt = Date.now()))
    await vi.advanceTimersByTimeAsync(GRACE_MS + 1000)
    expect(closedAt).toBeGreaterThanOrEqual(0)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(Object.fromEntries(committed)).toEqual({})
    // Offset 1 is answered after close(): its commit is not even asked for.
    expect(calls.filter((at) => at >= closedAt)).toEqual([])
  })
})
