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
  private readonly intake: Pick<InputConsumer, 'commitDirectly'>
  private readonly log: Logger
  /** Each commit's settling promise, and for one sent through a message stream, its partition and message. */
  private readonly pending = new Map<Promise<void>, { p: PartitionState; message: Msg } | null>()
  /** Set once shutdown has waited for the commits: the consumer closes, a message ending later stays uncommitted. */
  private closed = false

  constructor(intake: Pick<InputConsumer, 'commitDirectly'>, log: Logger) {
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
      .catch((err: unknown) => {
        // Lost in a rebalance before it was sent: its new owner commits it; nothing failed.
        // Stranded and sent again (stranded()): that one's outcome is the one that counts.
        if (err instanceof PartitionLostError || !this.pending.has(done)) return
        this.log.warn({ error: errorMessage(err), partition: message.partition, offset: String(message.offset) }, 'offset commit failed (the messages will be redelivered)')
      })
      .finally(() => this.pending.delete(done))
    this.pending.set(done, direct ? null : { p, message })
  }

  /**
   * The message stream ended or was replaced (its partitions' `directBelow` already moved up):
   * its commits still pending are sent again through the consumer (per partition, one goes at
   * the highest offset), except for partitions lost meanwhile (their new owner commits).
   */
  stranded(): void {
    const through = [...this.pending].filter(([, sent]) => sent !== null)
    for (const [done, sent] of through) {
      this.pending.delete(done)
      if (!sent!.p.lost) this.commit(sent!.p, sent!.message)
    }
  }

  /** At shutdown: waits until every commit settled or `until` (a Date.now() time), commits added meanwhile too; later ones are not sent. */
  async close(until: number): Promise<void> {
    while (this.pending.size > 0 && Date.now() < until) await atMost(Promise.allSettled([...this.pending.keys()]), until - Date.now())
    this.closed = true
    if (this.pending.size > 0) this.log.warn({ pending: this.pending.size }, 'offset commits not done in time at shutdown: those messages will be scored again')
  }
}
