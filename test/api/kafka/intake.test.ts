// Stream mode's input consumer, without a broker (its consumer's commit and consume are
// stand-ins): commits through the consumer itself go one at a time per partition and never
// backwards, and what a lost message stream still emits is left to the next stream.
import { EventEmitter } from 'node:events'
import { Consumer } from '@platformatic/kafka'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { InputConsumer, type Msg } from '../../../src/api/kafka/intake.ts'
import type { FetchAnswer } from '../../../src/api/kafka/tenure.ts'
import type { CommitPosition } from '../../../src/kafka/commit-flight.ts'
import { kafkaSettings } from '../../../src/kafka/config.ts'
import { silentLogger } from '../../../src/types.ts'
import { controlledSend, flush, state } from '../../kafka/controlled-commits.ts'

/** A message stream that closes only when the test says (the real one closes asynchronously). */
class FakeStream extends EventEmitter {
  readonly closing = Promise.withResolvers<void>()
  pause(): void {}
  resume(): void {}
  close(): Promise<void> {
    return this.closing.promise
  }
}

const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'], stream: { input_topic: 'requests' } } }, '/tmp')!
const message = (offset: bigint): Msg => ({ topic: 'requests', partition: 0, offset, leaderEpoch: 0 }) as Msg

let taken: bigint[]
let intake: InputConsumer

beforeEach(() => {
  taken = []
  vi.spyOn(Consumer.prototype, 'startLagMonitoring').mockReturnValue(undefined as never)
  vi.spyOn(Consumer.prototype, 'stopLagMonitoring').mockReturnValue(undefined as never)
  intake = new InputConsumer(settings, silentLogger, { message: (m) => taken.push(m.offset), streamChanged() {}, assigned() {} })
})

afterEach(async () => {
  await intake.close()
  vi.restoreAllMocks()
})

describe("the input consumer's direct commits", () => {
  it('go one at a time per partition, at the highest offset asked for meanwhile, never backwards; refused when the consumer is not in its group', async () => {
    const { sent, send } = controlledSend()
    vi.spyOn(Consumer.prototype, 'commit').mockImplementation(((options: { offsets: CommitPosition[] }) => send(options.offsets)) as never)
    const active = vi.spyOn(Consumer.prototype, 'isActive').mockReturnValue(true)
    const commits = [9n, 11n, 10n].map((o) => state(intake.commitDirectly(message(o))))
    await flush()
    expect(sent.map((s) => s.offsets)).toEqual(['0@10'])
    sent[0]!.settle.resolve()
    await flush()
    expect(sent.map((s) => s.offsets)).toEqual(['0@10', '0@12'])
    sent[1]!.settle.resolve()
    await flush()
    expect(commits.map((c) => c.value)).toEqual(['resolved', 'resolved', 'resolved'])
    active.mockReturnValue(false)
    const outside = state(intake.commitDirectly(message(20n)))
    await flush()
    expect(outside.value).toBe('rejected')
    expect(sent).toHaveLength(2)
  })
})

describe("the input consumer's direct commits, across a rebalance", () => {
  it('one merged behind another is not sent once the group has given its partition to another member (whose commits it would move back)', async () => {
    const { sent, send } = controlledSend()
    vi.spyOn(Consumer.prototype, 'commit').mockImplementation(((options: { offsets: CommitPosition[] }) => send(options.offsets)) as never)
    vi.spyOn(Consumer.prototype, 'isActive').mockReturnValue(true)
    const group = intake.consumer as unknown as { assignments: { topic: string; partitions: number[] }[] | null }
    group.assignments = [{ topic: 'requests', partitions: [0] }]
    const first = state(intake.commitDirectly(message(9n)))
    const behind = state(intake.commitDirectly(message(11n)))
    group.assignments = [{ topic: 'requests', partitions: [1] }]
    sent[0]!.settle.resolve()
    await flush()
    expect(sent.map((s) => s.offsets)).toEqual(['0@10'])
    expect([first.value, behind.value]).toEqual(['resolved', 'rejected'])
  })
})

describe("the input consumer's joins", () => {
  const fetched = (partition: number, offset: bigint, generation: number, memberId: string | null = 'a'): Msg =>
    ({ topic: 'requests', partition, offset, metadata: { consumer: { memberId, generationId: generation } } }) as unknown as Msg

  it('tells a message fetched before its partition was lost and given back from one fetched since (in the order answers were read), and forgets the client\'s position in it', async () => {
    const stream = Object.assign(new FakeStream(), { offsetsToFetch: new Map<string, bigint>() })
    vi.spyOn(Consumer.prototype, 'consume').mockResolvedValueOnce(stream as never).mockReturnValue(new Promise(() => {}) as never)
    await intake.start()
    const group = intake.consumer as unknown as { assignments: { topic: string; partitions: number[] }[] | null; generationId: number; memberId: string | null }
    const join = (generationId: number, partitions: number[], memberId = 'a') => {
      Object.assign(group, { memberId, generationId, assignments: [{ topic: 'requests', partitions }] })
      intake.consumer.emit('consumer:group:join', {})
    }
    // The stream closes at the end whatever fails: the consumer's close waits for it.
    try {
      join(1, [0, 1])
      // The client fetched both partitions up to 200, and keeps those positions across joins.
      stream.offsetsToFetch.set('requests:0', 200n).set('requests:1', 200n)
      join(2, [1])
      join(3, [0, 1])
      // Partition 0 was lost at generation 2 and given back at 3; partition 1 stayed.
      expect([fetched(0, 5n, 1), fetched(0, 5n, 3), fetched(1, 5n, 1), fetched(2, 5n, 3)].map((m) => intake.current(m))).toEqual([false, true, true, false])
      // Given back, partition 0 is read from the committed offset (or the earliest one), not from where the client stopped.
      expect([...stream.offsetsToFetch]).toEqual([['requests:1', 200n]])
      // Pushed out of the group: an answer is read under no member id, then the member rejoins as b,
      // without partition 0, and gets it back: what was read under no id is stale for it, not for partition 1.
      group.memberId = null
      stream.emit('fetch')
      join(4, [1], 'b')
      join(5, [0, 1], 'b')
      expect([fetched(0, 6n, 3, null), fetched(1, 6n, 3, null), fetched(0, 6n, 5, 'b')].map((m) => intake.current(m))).toEqual([false, true, true])
    } finally {
      stream.closing.resolve()
    }
  })
})

describe("the input consumer's fetches", () => {
  type Answer = FetchAnswer & { responses: { partitions: { partitionIndex: number; records?: { records: readonly unknown[] }[] | null }[] }[] }
  const request = { topics: [{ topicId: 'requests', partitions: [0, 1].map((partition) => ({ partition, fetchOffset: 0n })) }] }
  const answer = (): Answer => ({
    responses: [{ partitions: [0, 1].map((p) => ({ partitionIndex: p, records: [{ firstOffset: 0n, attributes: 0, records: [{ offsetDelta: 0 }, { offsetDelta: 1 }] }] })) }],
  })

  it('empty what an answer read after a partition was lost and given back holds of it, when the fetch was sent before the loss, before the stream gets the answer', async () => {
    // The client's own fetch, answered when the test says: beneath the wrapper the stream calls.
    const answers: ((error: Error | null, got: Answer) => void)[] = []
    vi.spyOn(Consumer.prototype, 'fetch').mockImplementation(((_request: unknown, callback: (error: Error | null, got: Answer) => void) => void answers.push(callback)) as never)
    const member = new InputConsumer(settings, silentLogger, { message() {}, streamChanged() {}, assigned() {} })
    const group = member.consumer as unknown as { assignments: { topic: string; partitions: number[] }[] | null; generationId: number; memberId: string | null }
    const join = (generationId: number, partitions: number[]) => {
      Object.assign(group, { memberId: 'a', generationId, assignments: [{ topic: 'requests', partitions }] })
      member.consumer.emit('consumer:group:join', {})
    }
    const seen: Answer[] = []
    const send = () => member.consumer.fetch(request as never, ((_error: Error | null, got: Answer) => void seen.push(got)) as never)
    try {
      join(1, [0, 1])
      send()
      // Partition 0 is lost at generation 2 and given back at 3 before the answer is read; partition 1 stays.
      join(2, [1])
      join(3, [0, 1])
      send()
      answers[0]!(null, answer())
      answers[1]!(null, answer())
      expect(seen.map((got) => got.responses[0]!.partitions.map((p) => p.records?.[0]?.records.length ?? 0))).toEqual([
        [0, 2],
        [2, 2],
      ])
      expect(member.skippedStale).toBe(2)
    } finally {
      await member.close()
    }
  })
})

describe('a lost message stream', () => {
  it('what it still emits before its close is not taken (the next stream reads it again from the committed offset)', async () => {
    const first = new FakeStream()
    vi.spyOn(Consumer.prototype, 'consume').mockResolvedValueOnce(first as never).mockReturnValue(new Promise(() => {}) as never)
    await intake.start()
    first.emit('data', message(4n))
    // The consumer lost its group (a rejoin failed): the stream is lost, and closing.
    intake.consumer.emit('error', new Error('rejoin failed'))
    expect(intake.state).toBe('reconnecting')
    first.emit('data', message(5n))
    first.closing.resolve()
    expect(taken).toEqual([4n])
  })
})
