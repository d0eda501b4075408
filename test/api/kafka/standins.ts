// Stream mode's scorer with stand-ins for its consumer, producer and sender (no broker), and a
// consumer group's committed offsets behind commits that work as the client's do: for unit tests
// of what the scorer commits, and when.
import { StreamScorer } from '../../../src/api/kafka/stream.ts'
import { Tenure } from '../../../src/api/kafka/tenure.ts'
import { GatewayError } from '../../../src/errors.ts'
import type { Gateway } from '../../../src/gateway.ts'
import { kafkaSettings } from '../../../src/kafka/config.ts'
import { silentLogger, type PredictResult } from '../../../src/types.ts'

export type { Msg } from '../../../src/api/kafka/intake.ts'
import type { Msg } from '../../../src/api/kafka/intake.ts'

export const GRACE_MS = 3000
const settingsWith = (maxInFlightPerPartition?: number) =>
  kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'], shutdown_grace_ms: GRACE_MS, stream: { input_topic: 'requests', max_in_flight_per_partition: maxInFlightPerPartition } } }, '/tmp')!
/** A commit's round trip to the group coordinator. */
const COMMIT_MS = 5

/**
 * A scorer whose consumer, producer and sender are stand-ins: no broker, nothing sent. A
 * message whose value is `hang` runs a predict that ends only when cancelled; any other is
 * refused (not a valid request) and its dead letter is acknowledged `ackAfterMs[offset]` ms later
 * (at once by default); `answered` lists the offsets answered so, in order. `owns`: the
 * partitions the consumer has now (all by default); `tenure`: since when (the consumer's, by default none known).
 * `direct` lists the offsets committed through the consumer (for messages of a stream that
 * ended), at once; `stopped()` whether intake was stopped.
 */
export async function scorerWithoutBroker(
  ackAfterMs: Record<string, number> = {},
  owns: (topic: string, partition: number) => boolean = () => true,
  maxInFlightPerPartition?: number,
  tenure = new Tenure(),
): Promise<{ scorer: StreamScorer; consumerClosed: () => boolean; answered: bigint[]; direct: bigint[]; stopped: () => boolean }> {
  const scorer = new StreamScorer({} as Gateway, settingsWith(maxInFlightPerPartition), silentLogger)
  const parts = scorer as unknown as { intake: { close(): Promise<void> }; producer: { close(force: boolean): Promise<void> } }
  // The real ones were never started (no connection); closed so they leave nothing behind.
  await parts.intake.close()
  await parts.producer.close(true)
  let closed = false
  let stopped = false
  const direct: bigint[] = []
  const current = (message: Msg): boolean => owns(message.topic, message.partition) && tenure.current(message)
  const intake = {
    stop: () => (stopped = true),
    close: () => ((closed = true), Promise.resolve()),
    commitDirectly: (message: Msg) => (direct.push(message.offset), Promise.resolve()),
    owns,
    current,
    forgetCommits() {},
    pause() {},
    resume() {},
  }
  const answered: bigint[] = []
  const acknowledged = (message: Msg): Promise<boolean> =>
    new Promise((resolve) => setTimeout(() => (answered.push(message.offset), resolve(true)), ackAfterMs[String(message.offset)] ?? 0))
  const startPredict = (message: Msg): unknown => {
    if (message.value?.toString() !== 'hang') throw new GatewayError('BAD_REQUEST', 'not a predict request')
    const { promise, resolve } = Promise.withResolvers<PredictResult>()
    return { result: promise, cancel: () => resolve({ error: { code: 'CANCELLED' } } as PredictResult) }
  }
  Object.assign(scorer, { intake, producer: { close: () => Promise.resolve() } })
  Object.assign((scorer as unknown as { commits: object }).commits, { intake })
  Object.assign((scorer as unknown as { scoring: object }).scoring, { sender: { deadLetter: acknowledged }, startPredict })
  return { scorer, consumerClosed: () => closed, answered, direct, stopped: () => stopped }
}

/**
 * The group's committed offsets (the next offset to read), per partition, as the broker has them,
 * behind a consumer that works as the client does: a commit is sent at once, or, while the
 * consumer is rejoining the group, once it has rejoined; one sent lands a round trip later,
 * one not sent yet when the consumer is closed never does.
 */
export function groupOffsets(consumerClosed: () => boolean, rejoining: { from: number; until: number } = { from: Infinity, until: Infinity }) {
  const committed = new Map<number, bigint>()
  /** When each commit was asked for. */
  const calls: number[] = []
  const commit = (partition: number, offset: bigint) => (): Promise<void> => {
    const now = Date.now()
    calls.push(now)
    const sendAt = now >= rejoining.from && now < rejoining.until ? rejoining.until : now
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        if (consumerClosed()) return reject(new Error('the consumer is closed'))
        setTimeout(() => (committed.set(partition, offset + 1n), resolve()), COMMIT_MS)
      }, sendAt - now),
    )
  }
  /** `fetchedIn`: the group generation the client fetched it in, as member `member-a` (no tag by default). */
  const message = (partition: number, offset: bigint, value: string, fetchedIn?: number): Msg =>
    ({ topic: 'requests', partition, offset, key: Buffer.from('k'), value: Buffer.from(value), commit: commit(partition, offset), metadata: fetchedIn === undefined ? {} : { consumer: { memberId: 'member-a', generationId: fetchedIn } } }) as unknown as Msg
  return { committed, calls, message }
}

export const accept = (scorer: StreamScorer, message: Msg): void => (scorer as unknown as { accept(m: Msg): void }).accept(message)

/** The group rebalanced: the scorer reads the consumer's new assignment (owns). */
export const rebalanced = (scorer: StreamScorer): void => (scorer as unknown as { assigned(): void }).assigned()

/** The message stream ended (a broker outage, a lost group): what the scorer has is committed through the consumer from now on. */
export const streamEnded = (scorer: StreamScorer): void => (scorer as unknown as { streamChanged(): void }).streamChanged()
