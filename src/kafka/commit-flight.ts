// Offset commits made through a consumer itself: one in flight per partition, never backwards.
// Two commits sent at once on one partition race: the broker keeps whichever it processes
// last, so a lower offset can land after a higher one and move the group back (its messages
// are read again). @platformatic/kafka merges a stream's own message.commit() calls this way;
// this does the same for the commits we send through the consumer.

/** An offset to commit: the next one to read on its partition. */
export interface CommitPosition {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly leaderEpoch: number
}

interface PartitionCommits {
  /** The highest offset sent, in flight or settled. */
  sent: CommitPosition | undefined
  /** The commit that carried it; kept once settled, for callers it already covers. */
  flight: Promise<void>
  busy: boolean
  /** That commit failed (and nothing newer was sent since). */
  failed: boolean
  /** The highest offset asked for while one was in flight, and the commit that will carry it. */
  wanted: CommitPosition | undefined
  next: Promise<void> | undefined
}

/** A commit not sent because its partition was lost meanwhile (forget): its new owner commits it. */
export class PartitionLostError extends Error {
  constructor(partition: number) {
    super(`partition ${partition} was lost before this commit was sent`)
    this.name = 'PartitionLostError'
  }
}

export class CommitFlight {
  private readonly send: (offsets: CommitPosition[]) => Promise<void>
  private readonly partitions = new Map<string, PartitionCommits>()

  constructor(send: (offsets: CommitPosition[]) => Promise<void>) {
    this.send = send
  }

  /**
   * Commits `position` on its partition. Settles as the commit that carries it (or a higher
   * offset of that partition) settles: sent now when none is in flight there, otherwise merged
   * into the one sent after it (requests arriving meanwhile share it, at their highest offset).
   * A request covered by a commit that failed sends that commit's offset again, not its own.
   */
  commit(position: CommitPosition): Promise<void> {
    const key = `${position.topic}\u0000${position.partition}`
    const p = this.partitions.get(key) ?? this.open(key)
    const sent = p.sent
    if (sent !== undefined && position.offset <= sent.offset) return p.failed && !p.busy && p.next === undefined ? this.start(p, sent) : p.flight
    if (p.next !== undefined) {
      if (position.offset > (p.wanted as CommitPosition).offset) p.wanted = position
      return p.next
    }
    if (!p.busy) return this.start(p, position)
    p.wanted = position
    const flushWanted = (): Promise<void> => {
      const wanted = p.wanted as CommitPosition
      p.wanted = undefined
      p.next = undefined
      if (this.partitions.get(key) !== p) return Promise.reject(new PartitionLostError(wanted.partition))
      return this.start(p, wanted)
    }
    p.next = p.flight.then(flushWanted, flushWanted)
    return p.next
  }

  /**
   * The partition is no longer this member's (lost in a rebalance): a commit merged behind the
   * one in flight is not sent (it rejects), and later requests start afresh. One already sent
   * cannot be called back.
   */
  forget(topic: string, partition: number): void {
    this.partitions.delete(`${topic}\u0000${partition}`)
  }

  private open(key: string): PartitionCommits {
    const p: PartitionCommits = { sent: undefined, flight: Promise.resolve(), busy: false, failed: false, wanted: undefined, next: undefined }
    this.partitions.set(key, p)
    return p
  }

  private start(p: PartitionCommits, position: CommitPosition): Promise<void> {
    const flight = this.send([position])
    p.sent = position
    p.flight = flight
    p.busy = true
    p.failed = false
    void flight.then(
      () => {
        if (p.flight === flight) p.busy = false
      },
      () => {
        if (p.flight !== flight) return
        p.busy = false
        p.failed = true
      },
    )
    return flight
  }
}
