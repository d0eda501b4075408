// A partition's tenure: which messages of it were fetched since this member has owned it
// without a break, by the member id and group generation the client tags each message with.
import { describe, expect, it } from 'vitest'
import type { Msg } from '../../../src/api/kafka/intake.ts'
import { Tenure } from '../../../src/api/kafka/tenure.ts'

const fetched = (partition: number, memberId?: string, generation?: number): Msg =>
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

  it('compares generations only within one member id: a group recreated counts them from the start again, under a new id', () => {
    const tenure = new Tenure()
    tenure.joined('a', 40, [0, 1])
    // The group was recreated: this member joins it as b, generations from 1, and gets partition 2 too.
    // Read before that join event: tagged b and 1, behind partition 0's start at a/40, yet fetched after it.
    expect(tenure.current(fetched(0, 'b', 1))).toBe(true)
    tenure.joined('a', 41, [1])
    tenure.joined('b', 3, [0, 1, 2])
    // Partition 0 came back at b/3: tagged a/41 (the old numbering, a higher number) was read before, b/2 too.
    expect([fetched(0, 'a', 41), fetched(0, 'b', 2), fetched(0, 'b', 3)].map((m) => tenure.current(m))).toEqual([false, false, true])
    // Partition 1 was kept since a/40: anything tagged from then on, under a or b, is current.
    expect([fetched(1, 'a', 40), fetched(1, 'a', 39), fetched(1, 'b', 1)].map((m) => tenure.current(m))).toEqual([true, false, true])
  })
})
