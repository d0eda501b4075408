// Since when this member has owned each input partition without a break, in group generations.
// The client tags each message with the group generation current when it handled the fetch's
// answer. A message tagged before its partition's current tenure began is stale: fetched before
// the partition was lost, and delivered after the group gave it back (intake paused across
// both). The partition is read again from the committed offset after the join (InputConsumer
// makes sure of it); a stale message taken first would make the ones read again below it look
// already seen: never scored, and passed by later commits. The tag is the generation when the
// answer was read, not when the fetch was sent: an answer still on its way at the loss and read
// only after the group began to give the partition back passes for current (docs/output.md).
import type { Msg } from './intake.ts'

export class Tenure {
  /** Partition → the generation its current tenure began at (absent: not known). */
  private since = new Map<number, number>()
  private owned = new Set<number>()
  private generation = -1

  /** The group assigned `partitions` at `generation`. Returns the partitions whose tenure begins now (not owned at the last join). */
  joined(generation: number, partitions: readonly number[]): number[] {
    // Generations counting from the start again: the group was recreated.
    const restarted = generation < this.generation
    const since = new Map<number, number>()
    const begun: number[] = []
    for (const p of partitions) {
      const kept = this.owned.has(p)
      if (!kept) begun.push(p)
      // A partition whose tenure begins now: every message fetched since is tagged with this
      // generation at least, whatever came before. A kept one keeps its start, unless the
      // generations started again (its old tags cannot be compared with the new ones).
      const began = kept ? (restarted ? undefined : this.since.get(p)) : generation
      if (began !== undefined) since.set(p, began)
    }
    this.since = since
    this.owned = new Set(partitions)
    this.generation = generation
    return begun
  }

  /** Whether `message` was fetched within its partition's current tenure (true when either is unknown). */
  current(message: Msg): boolean {
    const fetchedIn = (message.metadata?.consumer as { generationId?: unknown } | undefined)?.generationId
    if (typeof fetchedIn !== 'number') return true
    const since = this.since.get(message.partition)
    return since === undefined || fetchedIn >= since
  }
}
