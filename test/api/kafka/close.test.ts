// Stream mode's shutdown: the grace period bounds it, even when the client never settles an
// offset commit (one still pending when its message stream ended, e.g. while the consumer was
// rejoining the group after a broker outage). That message is scored again later. Predicts
// still running when the grace is over are cancelled, but the messages that did finish and
// were published still get their offsets committed, up to the first unfinished one.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { accept, GRACE_MS, groupOffsets, scorerWithoutBroker, streamEnded, type Msg } from './standins.ts'

afterEach(() => vi.useRealTimers())

describe('stream mode shutdown', () => {
  it('returns once the grace period is over although an offset commit never settles', async () => {
    const { scorer } = await scorerWithoutBroker()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    let commits = 0
    const message = { topic: 'requests', partition: 0, offset: 5n, key: Buffer.from('k'), value: Buffer.from('not JSON'), commit: () => (commits++, new Promise<void>(() => {})) }
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

  it('sends a commit again through the consumer when the stream it went through ends, and shutdown does not wait for the stranded one', async () => {
    // The client never settles a commit still pending on a stream that ended during an outage.
    const { scorer, direct } = await scorerWithoutBroker()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    for (const offset of [5n, 6n]) accept(scorer, { topic: 'requests', partition: 0, offset, key: Buffer.from('k'), value: Buffer.from('not JSON'), commit: () => new Promise<void>(() => {}) } as unknown as Msg)
    await vi.advanceTimersByTimeAsync(0)
    streamEnded(scorer)
    streamEnded(scorer) // a new stream opened: nothing is left to send again
    await vi.advanceTimersByTimeAsync(0)
    expect(direct).toEqual([5n, 6n])

    let closed = false
    void scorer.close().then(() => (closed = true))
    await vi.advanceTimersByTimeAsync(0)
    expect(closed).toBe(true)
  })

  it('does not wait out the grace for commits a stream that ends during the shutdown stranded: their re-sends are waited for instead', async () => {
    const { scorer, direct } = await scorerWithoutBroker()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    accept(scorer, { topic: 'requests', partition: 0, offset: 5n, key: Buffer.from('k'), value: Buffer.from('hang'), commit: () => new Promise<void>(() => {}) } as unknown as Msg)
    accept(scorer, { topic: 'requests', partition: 1, offset: 9n, key: Buffer.from('k'), value: Buffer.from('not JSON'), commit: () => new Promise<void>(() => {}) } as unknown as Msg)
    await vi.advanceTimersByTimeAsync(0)
    let closedAt = -1
    void scorer.close().then(() => (closedAt = Date.now()))
    await vi.advanceTimersByTimeAsync(GRACE_MS + 100) // the hung predict cancelled; offset 9's commit still pending on the stream
    expect(closedAt).toBe(-1)
    streamEnded(scorer) // the broker restarts: the stream ends
    await vi.advanceTimersByTimeAsync(0)
    expect(direct).toEqual([9n])
    expect(closedAt).toBe(GRACE_MS + 100)
  })

  it('sends a stranded commit again as the next stream opens when its first re-send failed (the consumer was out of its group)', async () => {
    const { scorer, direct } = await scorerWithoutBroker()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const intake = (scorer as unknown as { commits: { intake: { commitDirectly(m: Msg): Promise<void> } } }).commits.intake
    const send = intake.commitDirectly
    let refusals = 1
    intake.commitDirectly = (m) => (refusals-- > 0 ? (direct.push(m.offset), Promise.reject(new Error('the consumer is not in its group'))) : send(m))
    accept(scorer, { topic: 'requests', partition: 0, offset: 9n, key: Buffer.from('k'), value: Buffer.from('not JSON'), commit: () => new Promise<void>(() => {}) } as unknown as Msg)
    await vi.advanceTimersByTimeAsync(0)
    streamEnded(scorer) // lost: the re-send fails
    await vi.advanceTimersByTimeAsync(0)
    streamEnded(scorer) // a new stream opened: sent again
    await vi.advanceTimersByTimeAsync(0)
    expect(direct).toEqual([9n, 9n])
    streamEnded(scorer) // nothing left to send
    await vi.advanceTimersByTimeAsync(0)
    expect(direct).toEqual([9n, 9n])
  })

  it('does not send a failed re-send again once the member rejoined under a new id: another may have committed past it meanwhile', async () => {
    const { scorer, direct } = await scorerWithoutBroker()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const intake = (scorer as unknown as { commits: { intake: { memberId?: string; commitDirectly(m: Msg): Promise<void> } } }).commits.intake
    intake.memberId = 'member-a'
    intake.commitDirectly = (m) => (direct.push(m.offset), Promise.reject(new Error('the consumer is not in its group')))
    accept(scorer, { topic: 'requests', partition: 0, offset: 9n, key: Buffer.from('k'), value: Buffer.from('not JSON'), commit: () => new Promise<void>(() => {}) } as unknown as Msg)
    await vi.advanceTimersByTimeAsync(0)
    streamEnded(scorer) // lost: the re-send fails
    await vi.advanceTimersByTimeAsync(0)
    intake.memberId = 'member-b' // pushed out of the group, joined again
    streamEnded(scorer)
    await vi.advanceTimersByTimeAsync(0)
    expect(direct).toEqual([9n])
  })

  it('stops intake as the gateway drains: messages taken then, or queued, are not started (the gateway would refuse them)', async () => {
    const { scorer, answered, stopped } = await scorerWithoutBroker({}, () => true, 1)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const { message } = groupOffsets(() => false)
    accept(scorer, message(0, 0n, 'hang'))
    accept(scorer, message(0, 1n, 'poison')) // queued behind the limit of 1
    scorer.drain()
    expect(stopped()).toBe(true)
    accept(scorer, message(1, 0n, 'poison')) // already fetched when intake stopped
    await vi.advanceTimersByTimeAsync(GRACE_MS * 2)
    expect(answered).toEqual([])

    let closed = false
    void scorer.close().then(() => (closed = true))
    await vi.advanceTimersByTimeAsync(GRACE_MS + 1000)
    expect(closed).toBe(true)
    expect(answered).toEqual([])
  })
})
