// A partition's tenure: which messages of it were fetched since this member has owned it
// without a break, by the group generation the client tags each message with.
import { describe, expect, it } from 'vitest'
import type { Msg } from '../../../src/api/kafka/intake.ts'
import { Tenure } from '../../../src/api/kafka/tenure.ts'

const fetched = (partition: number, generation?: number): Msg =>
  ({ topic: 'requests', partition, offset: 0n, metadata: generation === undefined ? {} : { consumer: { generationId: generation } } }) as unknown as Msg

describe('a partition tenure', () => {
  it('begins when the partition is assigned, and again when it comes back after a loss', () => {
    const tenure = new Tenure()
    expect(tenure.joined(4, [0, 1])).toEqual([0, 1])
    expect(tenure.joined(5, [1])).toEqual([])
    expect(tenure.joined(6, [0, 1])).toEqual([0])
    expect([fetched(0, 5), fetched(0, 6), fetched(1, 4), fetched(1, 6)].map((m) => tenure.current(m))).toEqual([false, true, true, true])
    // Untagged (another client, a hook's metadata): nothing tells it stale.
    expect(tenure.current(fetched(0))).toBe(true)
  })

  it('still begins at the join for a partition assigned after the generations started again (the group recreated), and forgets the start of a kept one', () => {
    const tenure = new Tenure()
    tenure.joined(40, [0])
    tenure.joined(41, [])
    tenure.joined(42, [1])
    expect(tenure.joined(3, [0, 1])).toEqual([0])
    // Partition 0 begins at 3: a message tagged 2 was read before it. Partition 1's start (42) no longer compares.
    expect([fetched(0, 2), fetched(0, 3), fetched(1, 2)].map((m) => tenure.current(m))).toEqual([false, true, true])
  })
})
