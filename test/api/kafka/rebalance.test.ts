// Stream mode across rebalances: a partition lost while its messages run is its new owner's to
// commit, even when the group gives it back before they end. The owner meanwhile may have
// committed past them; a commit of theirs would move the group's offset back, and what lies
// between would be scored and answered again. Given back, the partition starts anew from the
// committed offset, its commits not held behind the old messages.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { accept, groupOffsets, rebalanced, scorerWithoutBroker } from './standins.ts'

afterEach(() => vi.useRealTimers())

describe('stream mode, a partition lost and given back while its messages run', () => {
  it('never commits the messages it had before it lost the partition', async () => {
    const owned = new Set([0])
    // Offset 10's dead letter is acknowledged 1 s after it arrives: it runs across both rebalances.
    const { scorer, consumerClosed } = await scorerWithoutBroker({ '10': 1000 }, (_topic, partition) => owned.has(partition))
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    const { committed, calls, message } = groupOffsets(consumerClosed)
    accept(scorer, message(0, 10n, 'poison'))
    await vi.advanceTimersByTimeAsync(0)

    owned.delete(0)
    rebalanced(scorer)
    // The other member takes the partition from offset 10, scores up to 20 and commits.
    committed.set(0, 21n)
    owned.add(0)
    rebalanced(scorer)

    await vi.advanceTimersByTimeAsync(2000)
    expect(committed.get(0)).toBe(21n)
    expect(calls).toEqual([])
  })

  it('commits what it takes after it got the partition back without waiting for the old messages', async () => {
    const owned = new Set([0])
    const { scorer, consumerClosed } = await scorerWithoutBroker({ '10': 1000 }, (_topic, partition) => owned.has(partition))
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    const { committed, message } = groupOffsets(consumerClosed)
    accept(scorer, message(0, 10n, 'poison'))
    await vi.advanceTimersByTimeAsync(0)
    owned.delete(0)
    rebalanced(scorer)
    committed.set(0, 21n)
    owned.add(0)
    rebalanced(scorer)

    // Delivered from the committed offset: 21 is answered at once and committed, 10 still running.
    accept(scorer, message(0, 21n, 'poison'))
    await vi.advanceTimersByTimeAsync(10)
    expect(committed.get(0)).toBe(22n)
    await vi.advanceTimersByTimeAsync(2000)
    expect(committed.get(0)).toBe(22n)
  })
})
