// Since when this member has owned each input partition without a break. The client tags each
// message with its member id and the group generation current when it read the fetch's answer.
// A message tagged before its partition's current tenure began is stale: fetched before the
// partition was lost, and delivered after the group gave it back (intake paused across both).
// The partition is read again from the committed offset after the join (InputConsumer makes
// sure of it); a stale message taken first would make the ones read again below it look
// already seen: never scored, and passed by later commits.
//
// Generations compare only within one member id: a group recreated counts them from the start
// again, and this member joins it under a new id. Tags of an id it has not joined under yet
// (read between a JoinGroup answer and the join event) count as current, as does an answer read
// before a loss but only after the group began to give the partition back (docs/output.md).
import type { Msg } from './intake.ts'

interface Start {
  /** The member id's place among those this member joined under. */
  readonly membership: number
  readonly generation: number
}

export class Tenure {
  /** The member ids this member joined under, in order. */
  private readonly memberships = new Map<string, number>()
  /** Partition → where its current tenure began. */
  private since = new Map<number, Start>()
  private owned = new Set<number>()

  /** The group assigned `partitions` to `member` at `generation`. Returns the partitions whose tenure begins now (not owned at the last join). */
  joined(member: string, generation: number, partitions: readonly number[]): number[] {
    let membership = this.memberships.get(member)
    if (membership === undefined) this.memberships.set(member, (membership = this.memberships.size))
    const since = new Map<number, Start>()
    const begun: number[] = []
    for (const p of partitions) {
      const kept = this.owned.has(p) ? this.since.get(p) : undefined
      if (kept === undefined) begun.push(p)
      since.set(p, kept ?? { membership, generation })
    }
    this.since = since
    this.owned = new Set(partitions)
    return begun
  }

  /** Whether `message` was fetched within its partition's current tenure (true when either is unknown). */
  current(message: Msg): boolean {
    const since = this.since.get(message.partition)
    const tag = message.metadata?.consumer as { memberId?: unknown; generationId?: unknown } | undefined
    if (since === undefined || typeof tag?.memberId !== 'string' || typeof tag.generationId !== 'number') return true
    const membership = this.memberships.get(tag.memberId)
    if (membership === undefined) return true
    return membership === since.membership ? tag.generationId >= since.generation : membership > since.membership
  }
}
