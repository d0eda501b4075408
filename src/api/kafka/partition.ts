// One input partition as stream mode sees it: the messages queued behind its in-flight limit,
// and the started ones in offset order. Predicts end in any order, but an offset may be
// committed only once every message before it has finished: this is where that order is kept.
import type { Msg } from './intake.ts'

export interface PartitionState {
  /** `topic:partition`. */
  readonly id: string
  readonly topic: string
  readonly partition: number
  running: number
  readonly queue: Msg[]
  /** Started messages in offset order, and which of them are finished. */
  readonly started: Msg[]
  readonly finished: Set<Msg>
  /** The offset after the last message taken: one below it delivered again (a new stream, a rejoin) is already here. */
  next: bigint
  /** Messages below this offset came from a stream that ended: committed through the consumer. */
  directBelow: bigint
  /**
   * Lost in a rebalance: its running messages end but are never committed here, even once the
   * group gives the partition back (a new state starts then, from the committed offset).
   */
  lost: boolean
}

export function newPartition(topic: string, partition: number): PartitionState {
  return { id: `${topic}:${partition}`, topic, partition, running: 0, queue: [], started: [], finished: new Set(), next: -1n, directBelow: -1n, lost: false }
}

/**
 * Records that a started message ended, finished when `done`. Returns the newest message
 * whose offset can now be committed (every one started before it is finished), if any.
 */
export function markEnded(p: PartitionState, message: Msg, done: boolean): Msg | undefined {
  // Unfinished (given up at shutdown): neither it nor anything after it is committed.
  if (done) p.finished.add(message)
  let last: Msg | undefined
  while (p.started.length && p.finished.has(p.started[0]!)) {
    last = p.started.shift()!
    p.finished.delete(last)
  }
  return last
}
