// What the model stream learns each time its consumer joins its group: which partitions of the
// models topic it reads, for the catch-up (src/registry/catch-up.ts), which also gets the
// topic's offsets read through that consumer; and whether another member shares the group.
// Two gateways with the same instance name share one group and silently split the topic, each
// serving only the versions on its own partitions. Kafka tells only the group's leader who
// the members are (and the client keeps that to itself), but every member sees its own
// assignment: one given fewer partitions than the topic has knows another member holds the
// rest. With a one-partition topic only the member left without it can tell, so it says so.
import type { Consumer, ConsumerGroupJoinPayload } from '@platformatic/kafka'
import { errorMessage } from '../kafka/client.ts'
import type { Logger } from '../types.ts'
import type { CatchUp, StartOffsets } from './catch-up.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any key/value types: only the group and offsets are used here
type AnyConsumer = Consumer<any, any, any, any>

const LATEST = -1n
const EARLIEST = -2n

/** Follows the consumer's joins: the catch-up's partitions and offsets, and a warning when the group is shared. */
export function followGroup(consumer: AnyConsumer, topic: string, log: Logger, catchUp: CatchUp | undefined): void {
  consumer.on('consumer:group:join', (payload: ConsumerGroupJoinPayload) => {
    const partitions = (payload.assignments ?? consumer.assignments ?? []).filter((a) => a.topic === topic).flatMap((a) => a.partitions)
    catchUp?.joined(partitions, () => startOffsets(consumer, topic))
    void warnIfShared(consumer, topic, partitions, log)
  })
}

/** The topic's end offsets, and where the group reads each partition from (its commit, never before the log's start). */
async function startOffsets(consumer: AnyConsumer, topic: string): Promise<StartOffsets> {
  try {
    const [latest, earliest] = await Promise.all([consumer.listOffsets({ topics: [topic], timestamp: LATEST }), consumer.listOffsets({ topics: [topic], timestamp: EARLIEST })])
    const ends = latest.get(topic) ?? []
    const starts = earliest.get(topic) ?? []
    const committed = (await consumer.listCommittedOffsets({ topics: [{ topic, partitions: ends.map((_, i) => i) }] })).get(topic) ?? []
    // -1: nothing committed, read from the start; a commit before the start (records deleted since) reads from the start too.
    return { ends, from: ends.map((_, i) => ((committed[i] ?? -1n) > (starts[i] ?? 0n) ? committed[i]! : (starts[i] ?? 0n))), replaying: ends.map((_, i) => (committed[i] ?? -1n) < 0n) }
  } catch (err) {
    throw new Error(errorMessage(err), { cause: err })
  }
}

async function warnIfShared(consumer: AnyConsumer, topic: string, partitions: readonly number[], log: Logger): Promise<void> {
  let count: number | undefined
  try {
    count = (await consumer.metadata({ topics: [topic] })).topics.get(topic)?.partitionsCount
  } catch {
    return // the brokers went again: the next join tells
  }
  if (count === undefined || partitions.length >= count) return
  log.warn(
    { group: consumer.groupId, topic, partitions: [...partitions], topic_partitions: count },
    `model stream: this gateway was given ${partitions.length} of the models topic's ${count} partitions: another consumer in its group reads the rest, so neither sees every version. Is another gateway running with the same instance name (SPECSERVE_INSTANCE)? Give each its own`,
  )
}
