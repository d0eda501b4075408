// Stream mode's input side: one member of the consumer group and its message stream, kept
// open (kafka/kept-stream.ts): a stream that ends, a rejoin that fails, or brokers unreachable
// at start lead to consuming again with backoff, and `state`/`last_error` say so.
import { Consumer, stringDeserializers, type Message, type MessagesStream } from '@platformatic/kafka'
import { connectionOptions } from '../../kafka/client.ts'
import { CommitFlight } from '../../kafka/commit-flight.ts'
import { KeptStream, type KeptStreamState } from '../../kafka/kept-stream.ts'
import type { KafkaSettings } from '../../kafka/config.ts'
import type { Logger } from '../../types.ts'
import { doubling } from '../../backoff.ts'
import { Tenure, type FetchAnswer, type FetchRequest } from './tenure.ts'

/**
 * A request: its key and value as the bytes sent (either undefined when the message has none,
 * whatever the client's types say). The key goes back on its answer as it came (a key need not
 * be text); a value that is not UTF-8 is refused, not read with U+FFFD (scoring.ts).
 */
export type Msg = Message<Buffer, Buffer, string, string>

const asBytes = (data?: Buffer): Buffer | undefined => data

/** How often the consumer lag is measured (one ListOffsets request to the brokers each time). */
export const LAG_INTERVAL_MS = 5000
/** The longest wait between two attempts to consume again. */
const MAX_REOPEN_BACKOFF_MS = 30_000

/** `starting`: the first consume() is under way; `consuming`: a message stream is open; `reconnecting`: none is (it ended, or the brokers are unreachable) and one is being opened. */
export type IntakeState = KeptStreamState

export interface IntakeHandlers {
  message(message: Msg): void
  /**
   * The stream ended (a broker outage, a lost group), or a new one replaced it, before its first
   * message: a new stream starts again from the committed offsets, and the old one's commits
   * would never settle.
   */
  streamChanged(): void
  /** The group (re)assigned this member's partitions. */
  assigned(): void
}

/**
 * A fetch long-polls the broker for up to this long when nothing is new. It must stay well
 * under the request timeout: at the library's default (5000 ms, our default request timeout
 * too) every fetch of an idle topic timed out, and after 4 the stream ended.
 */
export const fetchWaitMs = (requestTimeoutMs: number): number => Math.max(1, Math.min(1000, Math.floor(requestTimeoutMs / 2)))

export class InputConsumer {
  readonly consumer: Consumer<Buffer, Buffer, string, string>
  private readonly settings: KafkaSettings
  private readonly intake: KeptStream<MessagesStream<Buffer, Buffer, string, string>>
  /** The input topic's lag per partition at the last measurement (-1: not assigned to this instance). */
  private lag: readonly bigint[] = []
  /** Commits through the consumer (commitDirectly): one in flight per partition, never backwards. */
  private readonly direct: CommitFlight
  private readonly tenure = new Tenure()
  private stale = 0

  constructor(settings: KafkaSettings, log: Logger, handlers: IntakeHandlers) {
    this.settings = settings
    this.consumer = new Consumer({
      ...connectionOptions(settings, `${settings.clientId}-stream`),
      groupId: settings.stream.groupId,
      deserializers: { ...stringDeserializers, key: asBytes, value: asBytes },
      autocommit: false,
      // Few messages wait inside the client: backpressure is ours (per partition).
      highWaterMark: settings.stream.maxInFlightPerPartition * 2,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      maxWaitTime: fetchWaitMs(settings.requestTimeoutMs),
    })
    const topic = settings.stream.inputTopic
    this.intake = new KeptStream(this.consumer, log, {
      topic,
      name: 'stream mode: the input stream',
      consume: () => this.consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false }),
      opened: (stream, again) => {
        if (again) handlers.streamChanged()
        // What a lost stream still emits (its buffer, before its close) is left to the next one,
        // which reads it again from the committed offset: taken here, its commit would go
        // through the lost stream and never settle.
        stream.on('data', (message: Msg) => {
          if (this.intake.stream === stream) handlers.message(message)
        })
        // Emitted as each fetch answer arrives, just before its messages are pushed with the tag read here.
        stream.on('fetch', () => this.tenure.seen(this.consumer.memberId, this.consumer.generationId))
      },
      lost: () => handlers.streamChanged(),
      backoffMs: doubling(settings.retryBackoffMs, MAX_REOPEN_BACKOFF_MS),
    })
    this.judgeFetchesBySend()
    this.consumer.on('consumer:group:join', () => {
      const owned = this.consumer.assignments?.find((a) => a.topic === topic)?.partitions ?? []
      // The client keeps the fetch position of a partition it had before, and resumes there
      // when the group gives the partition back without a commit: what it had fetched past the
      // group's offset, dropped here at the loss (or left as stale), would never be read again.
      // Forgotten, the position is the committed offset, or the earliest one without a commit,
      // as for any partition new to this member. (This runs before the stream's own join
      // handler, which reads the positions again.)
      const positions = this.intake.stream?.offsetsToFetch
      for (const partition of this.tenure.joined(this.consumer.memberId, this.consumer.generationId, owned)) positions?.delete(`${topic}:${partition}`)
      handlers.assigned()
    })
    this.direct = new CommitFlight(async (offsets) => {
      // Not in its group: the client's commit would rejoin by itself, beside our own reopen.
      if (!this.consumer.isActive()) throw new Error('the consumer is not in its group')
      // Sent once the commit before it settled: its partition may be another member's by now,
      // and that member's commits must not be moved back.
      for (const o of offsets) if (!this.owns(o.topic, o.partition)) throw new Error(`partition ${o.partition} is not this member's now`)
      await this.consumer.commit({ offsets })
    })
  }

  get state(): IntakeState {
    return this.intake.state
  }

  get lastError(): string | null {
    return this.intake.lastError
  }

  /** This member's id in its group (a new one after it was pushed out and joined again). */
  get memberId(): string | undefined {
    return this.consumer.memberId ?? undefined
  }

  /** Message streams opened after one ended. */
  get reopens(): number {
    return this.intake.reopens
  }

  /** Errors of the consumer itself (a rejoin that failed). */
  get consumerErrors(): number {
    return this.intake.consumerErrors
  }

  /** Joins the group and starts consuming; when the brokers are unreachable, resolves all the same and keeps trying (state `reconnecting`). */
  async start(): Promise<void> {
    const topic = this.settings.stream.inputTopic
    await this.intake.start()
    this.consumer.on('consumer:lag', (lag) => (this.lag = lag.get(topic) ?? []))
    // Unmeasurable (brokers unreachable: the consumer reports that itself): no figure rather than a stale one.
    this.consumer.on('consumer:lag:error', () => (this.lag = []))
    this.consumer.startLagMonitoring({ topics: [topic] }, LAG_INTERVAL_MS)
  }

  pause(): void {
    this.intake.pause()
  }

  resume(): void {
    this.intake.resume()
  }

  /** Messages of fetch answers dropped for predating their partition's tenure (fetched before it was lost and given back). */
  get skippedStale(): number {
    return this.stale
  }

  /** Whether this member owns the partition now (true before the first assignment is known). */
  owns(topic: string, partition: number): boolean {
    const assignments = this.consumer.assignments
    if (!assignments) return true
    for (const a of assignments) if (a.topic === topic && a.partitions.includes(partition)) return true
    return false
  }

  /**
   * Whether this member owns the message's partition now, and has without a break since the
   * message was fetched: one fetched before a rebalance took the partition away is read again
   * from the committed offset, by its new owner or, once given back, here (see Tenure).
   */
  current(message: Msg): boolean {
    return this.owns(message.topic, message.partition) && this.tenure.current(message)
  }

  /**
   * The message stream fetches through the consumer's public `fetch`: wrapped here, each answer
   * is judged by the tag its request was sent under, before the stream pushes its messages or
   * moves its positions (Tenure.dropPredating). A fetch sent before two rebalances, one taking a
   * partition away and one giving it back, whose answer is read only after the second, would
   * otherwise pass for current, and the client would resume after its messages: those the
   * member had dropped at the loss would never be read again.
   */
  private judgeFetchesBySend(): void {
    type Fetch = (request: FetchRequest, callback?: (error: Error | null, answer?: FetchAnswer) => void) => unknown
    const consumer = this.consumer
    const fetch = consumer.fetch.bind(consumer) as Fetch
    consumer.fetch = ((request, callback) => {
      if (callback === undefined) return fetch(request)
      const sent = this.tenure.seen(consumer.memberId, consumer.generationId)
      return fetch(request, (error, answer) => {
        if (answer) this.stale += this.tenure.dropPredating(request, answer, sent)
        callback(error, answer)
      })
    }) as Fetch as typeof consumer.fetch
  }

  assignments(): { topic: string; partitions: number[] }[] {
    return this.consumer.assignments?.map((a) => ({ topic: a.topic, partitions: a.partitions })) ?? []
  }

  /** [partition, lag] of the partitions this member owns now, as last measured (a partition lost in a rebalance drops out at once). */
  ownedLag(): [number, number][] {
    const owned: [number, number][] = []
    const topic = this.settings.stream.inputTopic
    this.lag.forEach((lag, partition) => {
      if (lag >= 0n && this.owns(topic, partition)) owned.push([partition, Number(lag)])
    })
    return owned
  }

  /**
   * Commits past `message` through the consumer: for a message of a stream that ended (its own
   * commit would wait on it for ever). Such commits on one partition go one at a time, each at
   * the highest offset asked for meanwhile, so a lower one never lands after a higher one.
   */
  commitDirectly(message: Msg): Promise<void> {
    return this.direct.commit({ topic: message.topic, partition: message.partition, offset: message.offset + 1n, leaderEpoch: message.leaderEpoch })
  }

  /** A partition lost in a rebalance: a direct commit for it not sent yet never is. */
  forgetCommits(topic: string, partition: number): void {
    this.direct.forget(topic, partition)
  }

  /** Stops intake and lag measurements; the stream and the group stay (commits still go through). */
  stop(): void {
    this.intake.stop()
    this.consumer.stopLagMonitoring()
  }

  async close(): Promise<void> {
    this.stop()
    await this.intake.close()
    await this.consumer.close(true).catch(() => {})
  }
}
