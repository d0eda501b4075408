// Since when this member has owned each input partition without a break. The client tags each
// message with its member id and the group generation as they were when it read the fetch's
// answer. A message tagged before its partition's current tenure began is stale: fetched before
// the partition was lost, and delivered after the group gave it back (intake paused across
// both). The partition is read again from the committed offset after the join (InputConsumer
// makes sure of it); a stale message taken first would make the ones read again below it look
// already seen: never scored, and passed by later commits.
//
// Tags are ordered by when the client first sent a fetch or read an answer under them (`seen`)
// or joined under them: a member id and a generation only ever move forward together,
// except that a member pushed out of the group reads under no id until it rejoins, a JoinGroup
// answer may give an id it never joins under, and a group recreated counts generations from the
// start again. An answer read after the group gave a partition back carries the new tag, though
// its fetch was sent before the loss: what it holds of that partition is judged by the tag of
// the send instead (`dropPredating`, before the client's message stream sees the answer).
import type { Msg } from './intake.ts'

/** What Tenure reads of a fetch request (the options of the client's fetch). */
export interface FetchRequest {
  topics: readonly { partitions: readonly { partition: number; fetchOffset: bigint }[] }[]
}

interface RecordBatch {
  firstOffset: bigint
  attributes: number
  records: readonly { offsetDelta: number }[]
}

/** What Tenure reads and changes of a fetch answer (the client's FetchResponse). */
export interface FetchAnswer {
  responses: { partitions: { partitionIndex: number; records?: readonly RecordBatch[] | null }[] }[]
}

/** A batch of control records (transaction markers): never delivered as messages. */
const CONTROL_BATCH = 1 << 5

export class Tenure {
  /** Member id (null: none) → generation → the tag's place in the order it was first seen in. */
  private readonly order = new Map<string | null, Map<number, number>>()
  private placed = 0
  /** The place of the tag the client reads under now. */
  private now = -1
  /** Partition owned at the last join → the place of the tag its current tenure began under. */
  private since = new Map<number, number>()

  /**
   * The client sends a fetch, or is about to push the messages of an answer, under `member` and
   * `generation`: returns the tag's place (a fetch's answer is judged by it, `dropPredating`).
   */
  seen(member: string | null, generation: number): number {
    return this.place(member, generation)
  }

  /**
   * Empties what `answer`, to `request` sent at place `sent`, holds of a partition whose current
   * tenure began after the send (lost and given back meanwhile), and returns how many messages
   * that was. The stream then neither delivers them nor moves its position in the partition
   * past them: it reads the partition from the committed offset, or the earliest one, as after
   * any return. (Every partition is the input topic's, the only one consumed.)
   */
  dropPredating(request: FetchRequest, answer: FetchAnswer, sent: number): number {
    let dropped = 0
    for (const topic of answer.responses) {
      for (const partition of topic.partitions) {
        const since = this.since.get(partition.partitionIndex)
        if (since === undefined || since <= sent || !partition.records) continue
        // Emptied even if not asked for here: the stream delivers one asked of another broker in
        // the same round (left in this one's fetch session) too. Counted only if asked for here,
        // from the offset asked (the other broker's offset is not known here: a rare undercount).
        const from = requestedOffset(request, partition.partitionIndex)
        if (from !== undefined) dropped += messagesFrom(partition.records, from)
        partition.records = null
      }
    }
    return dropped
  }

  /** The group assigned `partitions` to `member` at `generation`. Returns the partitions whose tenure begins now (not owned at the last join). */
  joined(member: string | null, generation: number, partitions: readonly number[]): number[] {
    const now = this.place(member, generation)
    const since = new Map<number, number>()
    const begun: number[] = []
    for (const p of partitions) {
      const kept = this.since.get(p)
      if (kept === undefined) begun.push(p)
      since.set(p, kept ?? now)
    }
    this.since = since
    return begun
  }

  /** Whether `message` was fetched within its partition's current tenure (true when either is unknown). */
  current(message: Msg): boolean {
    const since = this.since.get(message.partition)
    const tag = message.metadata?.consumer as { memberId?: unknown; generationId?: unknown } | undefined
    if (since === undefined || tag === undefined || typeof tag.generationId !== 'number') return true
    const place = this.order.get(typeof tag.memberId === 'string' ? tag.memberId : null)?.get(tag.generationId)
    return place === undefined || place >= since
  }

  /** The place of the tag the client reads under now: a new one for a tag not seen, or seen before others (it came back). */
  private place(member: string | null, generation: number): number {
    let generations = this.order.get(member)
    if (generations === undefined) this.order.set(member, (generations = new Map()))
    const place = generations.get(generation)
    if (place === this.now) return place
    // A tag that comes back (no member id at a generation seen before, in a group recreated)
    // takes the later place: its old messages may then pass for current, never fresh ones for stale.
    generations.set(generation, (this.now = this.placed++))
    return this.now
  }
}

function requestedOffset(request: FetchRequest, partition: number): bigint | undefined {
  for (const topic of request.topics) for (const p of topic.partitions) if (p.partition === partition) return p.fetchOffset
  return undefined
}

/** The records the client would deliver as messages: not control records, and not below the offset asked for (a batch may begin before it). */
function messagesFrom(batches: readonly RecordBatch[], from: bigint): number {
  let count = 0
  for (const batch of batches) {
    if ((batch.attributes & CONTROL_BATCH) !== 0) continue
    for (const record of batch.records) if (batch.firstOffset + BigInt(record.offsetDelta) >= from) count++
  }
  return count
}
