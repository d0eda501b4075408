// Stream mode across rebalances: a partition lost while its messages run is its new owner's to
// commit, even when the group gives it back before they end. The owner meanwhile may have
// committed past them; a commit of theirs would move the group's offset back, and what lies
// between would be scored and answered again. Given back, the partition starts anew from the
// committed offset, its commits not held behind the old messages.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Tenure } from '../../../src/api/kafka/tenure.ts'
import { accept, groupOffsets, rebalanced, scorerWithoutBroker } from './standins.ts'

afterEach(() => vi.useRealTimers())

/**
 * Partition 0's offset 10 runs 1 s (its dead letter is acknowledged then); meanwhile the group
 * takes the partition away, its owner meanwhile commits up to `ownerCommitted` (if given), and
 * the group gives it back. `maxInFlight`: the partition's in-flight limit.
 */
async function lostAndGivenBack(ownerCommitted?: bigint, maxInFlight?: number) {
  const owned = new Set([0])
  const { scorer, consumerClosed } = await scorerWithoutBroker({ '10': 1000 }, (_topic, partition) => owned.has(partition), maxInFlight)
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
  const group = groupOffsets(consumerClosed)
  accept(scorer, group.message(0, 10n, 'poison'))
  await vi.advanceTimersByTimeAsync(0)
  owned.delete(0)
  rebalanced(scorer)
  if (ownerCommitted !== undefined) group.committed.set(0, ownerCommitted)
  owned.add(0)
  rebalanced(scorer)
  return { scorer, ...group }
}

describe('stream mode, a partition lost and given back while its messages run', () => {
  it('never commits the messages it had before it lost the partition', async () => {
    // The other member took the partition from offset 10, scored up to 20 and committed.
    const { committed, calls } = await lostAndGivenBack(21n)
    await vi.advanceTimersByTimeAsync(2000)
    expect(committed.get(0)).toBe(21n)
    expect(calls).toEqual([])
  })

  it('commits what it takes after it got the partition back without waiting for the old messages', async () => {
    const { scorer, committed, message } = await lostAndGivenBack(21n)
    // Delivered from the committed offset: 21 is answered at once and committed, 10 still running.
    accept(scorer, message(0, 21n, 'poison'))
    await vi.advanceTimersByTimeAsync(10)
    expect(committed.get(0)).toBe(22n)
    await vi.advanceTimersByTimeAsync(2000)
    expect(committed.get(0)).toBe(22n)
  })

  it('takes a message given back while the old ones run only as the partition\'s in-flight limit allows', async () => {
    // One request of a partition at a time.
    const { scorer, committed, message } = await lostAndGivenBack(undefined, 1)
    // Delivered again from the committed offset; it runs 1 s too, once the old run's slot is free.
    accept(scorer, message(0, 10n, 'poison'))
    await vi.advanceTimersByTimeAsync(1500)
    expect(committed.get(0)).toBeUndefined() // the old run ended at 1 s, uncommitted; the new one started then
    await vi.advanceTimersByTimeAsync(1000)
    expect(committed.get(0)).toBe(11n)
  })
})

describe('stream mode, messages fetched before a rebalance took their partition away', () => {
  it('leaves them when the partition comes back while intake was paused, and scores every message read again from the committed offset', async () => {
    // One request of a partition at a time: 10 runs 1 s, 11 waits, and intake pauses with 12 and 13 fetched (generation 1).
    const owned = new Set([0])
    const tenure = new Tenure()
    tenure.joined('member-a', 1, [0])
    const { scorer, consumerClosed, answered } = await scorerWithoutBroker({ '10': 1000 }, (_topic, partition) => owned.has(partition), 1, tenure)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    const { committed, message } = groupOffsets(consumerClosed)
    for (const offset of [10n, 11n]) accept(scorer, message(0, offset, 'poison', 1))
    await vi.advanceTimersByTimeAsync(0)
    owned.delete(0)
    tenure.joined('member-a', 2, [])
    rebalanced(scorer)
    owned.add(0)
    tenure.joined('member-a', 3, [0])
    rebalanced(scorer)
    // Intake resumes: first 12 and 13, fetched before the loss; then 10 to 13 read again from the
    // committed offset, or with none (as here) from the earliest one (10: the topic starts there).
    for (const offset of [12n, 13n]) accept(scorer, message(0, offset, 'poison', 1))
    for (const offset of [10n, 11n, 12n, 13n]) accept(scorer, message(0, offset, 'poison', 3))
    await vi.advanceTimersByTimeAsync(3000)
    // The old run answers 10 at 1 s (uncommitted); then 10 to 13 are taken again, one at a time.
    expect(answered).toEqual([10n, 10n, 11n, 12n, 13n])
    expect(committed.get(0)).toBe(14n)
    expect(scorer as unknown as { notOwned: number; redelivered: number }).toMatchObject({ notOwned: 2, redelivered: 0 })
  })
})

describe('stream mode, a partition kept across rebalances', () => {
  it('commits its running messages when it stayed this member\'s', async () => {
    const { scorer, consumerClosed } = await scorerWithoutBroker({ '10': 1000 })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    const { committed, message } = groupOffsets(consumerClosed)
    accept(scorer, message(0, 10n, 'poison'))
    await vi.advanceTimersByTimeAsync(0)
    rebalanced(scorer) // another member joined; this one kept partition 0
    await vi.advanceTimersByTimeAsync(2000)
    expect(committed.get(0)).toBe(11n)
  })

  it('takes each message once across the join: those fetched before it, then those read again from the committed offset', async () => {
    // One request of a partition at a time: 10 runs 1 s, 11 waits.
    const { scorer, consumerClosed } = await scorerWithoutBroker({ '10': 1000 }, undefined, 1)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    const { committed, message } = groupOffsets(consumerClosed)
    accept(scorer, message(0, 10n, 'poison'))
    accept(scorer, message(0, 11n, 'poison'))
    await vi.advanceTimersByTimeAsync(0)
    rebalanced(scorer)
    // The client's stream still holds 12, fetched before the join; then it reads again from the committed offset (none yet: 10).
    for (const offset of [12n, 10n, 11n, 12n]) accept(scorer, message(0, offset, 'poison'))
    await vi.advanceTimersByTimeAsync(2000)
    expect(committed.get(0)).toBe(13n)
    // Taken: 10, 11, 12; the three read again were skipped as already here.
    expect(scorer as unknown as { consumed: number; redelivered: number }).toMatchObject({ consumed: 3, redelivered: 3 })
  })
})
