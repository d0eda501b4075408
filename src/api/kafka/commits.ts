// Stream mode's offset commits not settled yet. A commit goes through the message's own stream
// (message.commit(), merged per partition by the client) or, for a message of a stream that
// ended, through the consumer (InputConsumer.commitDirectly). The client never settles a
// commit still pending on a stream that ends: such commits are sent again through the
// consumer, or they would pile up and every shutdown would wait for them.
import { errorMessage } from '../../kafka/client.ts'
import { PartitionLostError } from '../../kafka/commit-flight.ts'
import type { Logger } from '../../types.ts'
import { atMost } from '../../at-most.ts'
import type { InputConsumer, Msg } from './intake.ts'
import type { PartitionState } from './partition.ts'

export class PendingCommits {
  private readonly intake: Pick<InputConsumer, 'commitDirectly' | 'memberId'>
  private readonly log: Logger
  /** Each commit's settling promise, and for one sent through a message stream, its partition and message. */
  private readonly pending = new Map<Promise<void>, { p: PartitionState; message: Msg } | null>()
  /** Set once shutdown has waited for the commits: the consumer closes, a message ending later stays uncommitted. */
  private closed = false
  /**
   * Per partition, the highest commit through the consumer that failed (not in its group, as
   * the stream was lost): sent again as the next stream opens, for a partition gone idle sends no
   * other; not when the member rejoined under a new id (another may have owned the partition
   * and committed past it meanwhile).
   */
  private readonly failed = new Map<string, { p: PartitionState; message: Msg; member: string | undefined }>()
  /** Wakes close() when stranded() replaced the commits it waits for. */
  private replaced: (() => void) | undefined

  constructor(intake: Pick<InputConsumer, 'commitDirectly' | 'memberId'>, log: Logger) {
    this.intake = intake
    this.log = log
  }

  get size(): number {
    return this.pending.size
  }

  /** Commits past `message` of partition `p`: through the consumer when it came from a stream that ended (below `p.directBelow`). */
  commit(p: PartitionState, message: Msg): void {
    if (this.closed) return
    const direct = message.offset < p.directBelow
    const committed = direct ? this.intake.commitDirectly(message) : message.commit()
    const done: Promise<void> = Promise.resolve(committed)
      .then(() => {
        if ((this.failed.get(p.id)?.message.offset ?? -1n) <= message.offset) this.failed.delete(p.id)
      })
      .catch((err: unknown) => {
        // Lost in a rebalance before it was sent: its new owner commits it; nothing failed.
        // Stranded and sent again (stranded()): that one's outcome is the one that counts.
        if (err instanceof PartitionLostError || !this.pending.has(done)) return
        if (direct && (this.failed.get(p.id)?.message.offset ?? -1n) < message.offset) this.failed.set(p.id, { p, message, member: this.intake.memberId })
        this.log.warn({ error: errorMessage(err), partition: message.partition, offset: String(message.offset) }, 'offset commit failed (the messages will be redelivered)')
      })
      .finally(() => this.pending.delete(done))
    this.pending.set(done, direct ? null : { p, message })
  }

  /**
   * The message stream ended or was replaced (its partitions' `directBelow` already moved up):
   * its commits still pending are sent again through the consumer (per partition, one goes at
   * the highest offset), and so are those that failed through the consumer before, except for
   * partitions lost meanwhile (their new owner commits).
   */
  stranded(): void {
    const through = [...this.pending].filter(([, sent]) => sent !== null).map(([done, sent]) => (this.pending.delete(done), sent!))
    const again = [...through, ...[...this.failed.values()].filter((f) => f.member === this.intake.memberId)]
    this.failed.clear()
    for (const { p, message } of again) if (!p.lost) this.commit(p, message)
    this.replaced?.()
  }

  /** At shutdown: waits until every commit settled or `until` (a Date.now() time), commits added meanwhile too; later ones are not sent. */
  async close(until: number): Promise<void> {
    while (this.pending.size > 0 && Date.now() < until) {
      const replaced = new Promise<void>((resolve) => (this.replaced = resolve))
      await atMost(Promise.race([Promise.allSettled([...this.pending.keys()]), replaced]), until - Date.now())
    }
    this.replaced = undefined
    this.closed = true
    if (this.pending.size > 0) this.log.warn({ pending: this.pending.size }, 'offset commits not done in time at shutdown: those messages will be scored again')
  }
}
