// A partition's tenure: which messages of it were fetched since this member has owned it
// without a break, by the member id and group generation the client tags each message with,
// in the order the client sent fetches, read answers or joined under them; and what a fetch
// answer holds of a partition lost and given back since the fetch was sent.
import { describe, expect, it } from 'vitest'
import type { Msg } from '../../../src/api/kafka/intake.ts'
import { Tenure, type FetchAnswer } from '../../../src/api/kafka/tenure.ts'

const fetched = (partition: number, memberId?: string | null, generation?: number): Msg =>
  ({ topic: 'requests', partition, offset: 0n, metadata: memberId === undefined ? {} : { consumer: { memberId, generationId: generation } } }) as unknown as Msg

describe('a partition tenure', () => {
  it('begins when the partition is assigned, and again when it comes back after a loss', () => {
    const tenure = new Tenure()
    expect(tenure.joined('a', 4, [0, 1])).toEqual([0, 1])
    expect(tenure.joined('a', 5, [1])).toEqual([])
    expect(tenure.joined('a', 6, [0, 1])).toEqual([0])
    expect([fetched(0, 'a', 5), fetched(0, 'a', 6), fetched(1, 'a', 4), fetched(1, 'a', 6)].map((m) => tenure.current(m))).toEqual([false, true, true, true])
    // Untagged (another client, a hook's metadata): nothing tells it stale.
    expect(tenure.current(fetched(0))).toBe(true)
  })

  it('orders tags by when they were read: no member id after being pushed out, an id never joined under, a group recreated', () => {
    const tenure = new Tenure()
    tenure.joined('a', 40, [0, 1])
    tenure.joined('a', 41, [1])
    // Pushed out of the group: answers are read under no member id, then under an id a JoinGroup
    // gave that never joined (its sync failed), then under b, in a group recreated (generations from 1).
    tenure.seen(null, 41)
    tenure.seen('x', 1)
    tenure.seen('b', 2)
    // Read before b's join event: a later tag than partition 1's start at a/40, so not stale for it.
    expect(tenure.current(fetched(1, 'b', 2))).toBe(true)
    expect(tenure.joined('b', 2, [0, 1, 2])).toEqual([0, 2])
    // Partition 0 came back at b/2: everything read before is stale, whatever its generation.
    expect([fetched(0, 'a', 41), fetched(0, null, 41), fetched(0, 'x', 1), fetched(0, 'b', 2)].map((m) => tenure.current(m))).toEqual([false, false, false, true])
    // Partition 1 was kept since a/40: everything read since is current.
    expect([fetched(1, 'a', 41), fetched(1, null, 41), fetched(1, 'x', 1), fetched(1, 'b', 2)].map((m) => tenure.current(m))).toEqual([true, true, true, true])
  })

  it('places a tag that comes back after others (no member id at a generation seen before) anew: what is read under it then is not stale', () => {
    const tenure = new Tenure()
    tenure.joined('a', 3, [0])
    tenure.seen(null, 3) // pushed out at generation 3
    tenure.joined('b', 4, [1])
    // The group recreated later counts from 1 again; partition 0 comes back at c/3, and this
    // member is pushed out again at generation 3: what it reads now is fresh, not stale.
    tenure.joined('c', 1, [1])
    tenure.joined('c', 3, [0, 1])
    tenure.seen(null, 3)
    expect(tenure.current(fetched(0, null, 3))).toBe(true)
  })
})

describe('a fetch answer, judged by the tag its request was sent under', () => {
  const request = { topics: [{ partitions: [0, 1, 2].map((partition) => ({ partition, fetchOffset: 10n })) }] }
  // Per partition: a control batch (a transaction marker), then a batch that begins before the offset asked for.
  const answer = (partitions: number[]): FetchAnswer => ({
    responses: [
      {
        partitions: partitions.map((partitionIndex) => ({
          partitionIndex,
          records: [
            { firstOffset: 7n, attributes: 1 << 5, records: [{ offsetDelta: 0 }] },
            { firstOffset: 8n, attributes: 0, records: [0, 1, 2, 3].map((offsetDelta) => ({ offsetDelta })) },
          ],
        })),
      },
    ],
  })
  const kept = (a: FetchAnswer) => a.responses[0]!.partitions.map((p) => [p.partitionIndex, p.records?.length ?? 0])

  it('loses what it holds of a partition given back since, counted as the messages the client would deliver; keeps the rest', () => {
    const tenure = new Tenure()
    tenure.joined('a', 1, [0, 1, 2, 3])
    const sent = tenure.seen('a', 1)
    tenure.joined('a', 2, [1])
    tenure.joined('a', 3, [0, 1, 3])
    // 0: lost and given back; 1: kept; 2: lost and not back (the stream leaves it); 3: given back,
    // and not asked for in this request (a fetch session's leftover): emptied, not counted.
    const late = answer([0, 1, 2, 3])
    expect(tenure.dropPredating(request, late, sent)).toBe(2)
    expect(kept(late)).toEqual([
      [0, 0],
      [1, 2],
      [2, 2],
      [3, 0],
    ])
    // A fetch sent since the return keeps it all.
    const fresh = answer([0, 1])
    expect(tenure.dropPredating(request, fresh, tenure.seen('a', 3))).toBe(0)
    expect(kept(fresh)).toEqual([
      [0, 2],
      [1, 2],
    ])
  })
})
