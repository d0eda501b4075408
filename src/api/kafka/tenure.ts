// Since when this member has owned each input partition without a break, in group generations.
// The client tags each message with the generation its fetch was sent in. A message fetched
// before its partition's current tenure began is stale: fetched before the partition was lost
// and delivered after the group gave it back (intake paused across both), or fetched before this
// member was pushed out of the group. The client reads such messages again from the committed
// offset after the join; taken now, they would come first, and the ones read again below them
// would be skipped as already seen: never scored, and passed by later commits.
import type { Msg } from './intake.ts'

export class Tenure {
  /** Partition → the generation from which it has been this member's without a break. */
  private since = new Map<number, number>()
  private member: string | null = null
  private generation = -1

  /**
   * The group assigned `partitions` to `member` at `generation`. Returns true when the member
   * joined under a new id: it was out of the group meanwhile (its session timed out), so any
   * partition may have had another owner since the last join, even one it owns again now.
   */
  joined(member: string | null, generation: number, partitions: readonly number[]): boolean {
    const rejoined = this.member !== null && member !== null && member !== this.member
    // Generations counting from the start again: the group was recreated, the old ones tell nothing.
    const fresh = rejoined || generation < this.generation
    const since = new Map<number, number>()
    for (const p of partitions) since.set(p, fresh ? generation : (this.since.get(p) ?? generation))
    this.since = since
    if (member !== null) this.member = member
    this.generation = generation
    return rejoined
  }

  /** Whether `message` was fetched within its partition's current tenure (true when either is unknown). */
  current(message: Msg): boolean {
    const fetchedIn = (message.metadata?.consumer as { generationId?: unknown } | undefined)?.generationId
    if (typeof fetchedIn !== 'number') return true
    const since = this.since.get(message.partition)
    return since === undefined || fetchedIn >= since
  }
}
