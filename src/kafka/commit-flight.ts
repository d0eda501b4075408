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
  /** The highest offset sent, in flight or landed. */
  sent: bigint
  /** The commit that carried it; kept once settled, for callers it already covers. */
  flight: Promise<void>
  busy: boolean
  /** The highest offset asked for while one was in flight, and the commit that will carry it. */
  wanted: CommitPosition | undefined
  next: Promise<void> | undefined
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
   */
  commit(position: CommitPosition): Promise<void> {
    const key = `${position.topic}\u0000${position.partition}`
    const p = this.partitions.get(key) ?? this.open(key)
    if (position.offset <= p.sent) return p.flight
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
      return this.start(p, wanted)
    }
    p.next = p.flight.then(flushWanted, flushWanted)
    return p.next
  }

  private open(key: string): PartitionCommits {
    const p: PartitionCommits = { sent: -1n, flight: Promise.resolve(), busy: false, wanted: undefined, next: undefined }
    this.partitions.set(key, p)
    return p
  }

  private start(p: PartitionCommits, position: CommitPosition): Promise<void> {
    const flight = this.send([position])
    p.sent = position.offset
    p.flight = flight
    p.busy = true
    const settled = (): void => {
      if (p.flight === flight) p.busy = false
    }
    void flight.then(settled, settled)
    return flight
  }
}
