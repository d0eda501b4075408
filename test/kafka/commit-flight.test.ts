// Commits sent through a consumer itself (stream mode's commits for messages of a stream that
// ended): one in flight per partition, each at the highest offset asked for meanwhile, so a
// lower offset never lands after a higher one.
import { describe, expect, it } from 'vitest'
import { CommitFlight, type CommitPosition } from '../../src/kafka/commit-flight.ts'
import { controlledSend, flush, state } from './controlled-commits.ts'

const at = (offset: bigint, partition = 0): CommitPosition => ({ topic: 't', partition, offset, leaderEpoch: 0 })

describe('CommitFlight', () => {
  it('sends one commit per partition at a time; those asked for meanwhile go as one, at their highest offset, after it', async () => {
    const { sent, send } = controlledSend()
    const flight = new CommitFlight(send)
    const first = state(flight.commit(at(10n)))
    const others = [flight.commit(at(12n)), flight.commit(at(11n))].map(state)
    expect(sent.map((s) => s.offsets)).toEqual(['0@10'])
    sent[0]!.settle.resolve()
    await flush()
    expect(first.value).toBe('resolved')
    expect(sent.map((s) => s.offsets)).toEqual(['0@10', '0@12'])
    expect(others.map((o) => o.value)).toEqual(['pending', 'pending'])
    sent[1]!.settle.resolve()
    await flush()
    expect(others.map((o) => o.value)).toEqual(['resolved', 'resolved'])
  })

  it('never sends an offset lower than one already sent: it settles with the commit that carried the higher one', async () => {
    const { sent, send } = controlledSend()
    const flight = new CommitFlight(send)
    const high = state(flight.commit(at(20n)))
    sent[0]!.settle.resolve()
    await flush()
    const low = state(flight.commit(at(15n)))
    const same = state(flight.commit(at(20n)))
    await flush()
    expect(sent.map((s) => s.offsets)).toEqual(['0@20'])
    expect([high.value, low.value, same.value]).toEqual(['resolved', 'resolved', 'resolved'])
  })

  it('a failed commit fails its callers; the next one is still sent, and a later request goes at once', async () => {
    const { sent, send } = controlledSend()
    const flight = new CommitFlight(send)
    const failing = state(flight.commit(at(5n)))
    const behind = state(flight.commit(at(6n)))
    sent[0]!.settle.reject(new Error('coordinator moved'))
    await flush()
    expect(failing.value).toBe('rejected')
    expect(sent.map((s) => s.offsets)).toEqual(['0@5', '0@6'])
    sent[1]!.settle.resolve()
    await flush()
    expect(behind.value).toBe('resolved')
    const later = state(flight.commit(at(9n)))
    expect(sent.map((s) => s.offsets)).toEqual(['0@5', '0@6', '0@9'])
    sent[2]!.settle.resolve()
    await flush()
    expect(later.value).toBe('resolved')
  })

  it('a merged commit that fails fails every request merged into it', async () => {
    const { sent, send } = controlledSend()
    const flight = new CommitFlight(send)
    void flight.commit(at(1n))
    const merged = [flight.commit(at(3n)), flight.commit(at(2n))].map(state)
    sent[0]!.settle.resolve()
    await flush()
    expect(sent.map((s) => s.offsets)).toEqual(['0@1', '0@3'])
    sent[1]!.settle.reject(new Error('request timed out'))
    await flush()
    expect(merged.map((m) => m.value)).toEqual(['rejected', 'rejected'])
  })

  it('a request covered by a commit that failed sends that commit\'s offset again, never its own lower one', async () => {
    const { sent, send } = controlledSend()
    const flight = new CommitFlight(send)
    const failed = state(flight.commit(at(8n)))
    sent[0]!.settle.reject(new Error('coordinator moved'))
    await flush()
    expect(failed.value).toBe('rejected')
    const lower = state(flight.commit(at(6n)))
    expect(sent.map((s) => s.offsets)).toEqual(['0@8', '0@8'])
    sent[1]!.settle.resolve()
    await flush()
    expect(lower.value).toBe('resolved')
    // Landed now: covered, nothing sent again.
    expect(state(flight.commit(at(7n))).value).toBe('pending')
    await flush()
    expect(sent).toHaveLength(2)
  })

  it('partitions do not wait for each other', () => {
    const { sent, send } = controlledSend()
    const flight = new CommitFlight(send)
    void flight.commit(at(3n, 0))
    void flight.commit(at(7n, 1))
    void flight.commit(at(4n, 0))
    expect(sent.map((s) => s.offsets)).toEqual(['0@3', '1@7'])
  })

  it('forgets a lost partition: a commit merged behind the one in flight is not sent, and the next request starts afresh, lower or not', async () => {
    const { sent, send } = controlledSend()
    const flight = new CommitFlight(send)
    const first = state(flight.commit(at(30n)))
    const merged = state(flight.commit(at(35n)))
    flight.forget('t', 0)
    sent[0]!.settle.resolve()
    await flush()
    expect([first.value, merged.value]).toEqual(['resolved', 'rejected'])
    expect(sent.map((s) => s.offsets)).toEqual(['0@30'])
    // Given back, the group's offset is where its owner meanwhile left it, maybe below 30.
    const afresh = state(flight.commit(at(26n)))
    expect(sent.map((s) => s.offsets)).toEqual(['0@30', '0@26'])
    sent[1]!.settle.resolve()
    await flush()
    expect(afresh.value).toBe('resolved')
  })
})
