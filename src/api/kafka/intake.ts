// Stream mode's input side: one member of the consumer group and its message stream. The
// library ends a message stream for good on an error it does not retry itself (a fetch that
// failed 4 times: a broker outage of a few seconds), while the member keeps heartbeating and
// keeps its partitions, so no other member reads them either. Here a stream that ends while
// the gateway is not closing is replaced, with backoff, and `state`/`last_error` say so.
import { Consumer, stringDeserializers, type Message, type MessagesStream } from '@platformatic/kafka'
import { connectionOptions, errorMessage } from '../../kafka/client.ts'
import type { KafkaSettings } from '../../kafka/config.ts'
import type { Logger } from '../../types.ts'

export type Msg = Message<string, string, string, string>

/** How often the consumer lag is measured (one ListOffsets request to the brokers each time). */
export const LAG_INTERVAL_MS = 5000
/** The longest wait between two attempts to consume again. */
const MAX_REOPEN_BACKOFF_MS = 30_000

/** `consuming`: a message stream is open; `reconnecting`: it ended and a new one is being opened. */
export type IntakeState = 'starting' | 'consuming' | 'reconnecting' | 'closed'

export interface IntakeHandlers {
  message(message: Msg): void
  /** A new stream replaced one that ended: it starts again from the committed offsets. Called before its first message. */
  reopened(): void
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
  readonly consumer: Consumer<string, string, string, string>
  state: IntakeState = 'starting'
  lastError: string | null = null
  /** Message streams opened after one ended. */
  reopens = 0
  private readonly settings: KafkaSettings
  private readonly log: Logger
  private readonly handlers: IntakeHandlers
  private stream: MessagesStream<string, string, string, string> | null = null
  private paused = false
  private closing = false
  private attempt = 0
  private retry: NodeJS.Timeout | null = null
  /** The input topic's lag per partition at the last measurement (-1: not assigned to this instance). */
  private lag: readonly bigint[] = []

  constructor(settings: KafkaSettings, log: Logger, handlers: IntakeHandlers) {
    this.settings = settings
    this.log = log
    this.handlers = handlers
    this.consumer = new Consumer({
      ...connectionOptions(settings, `${settings.clientId}-stream`),
      groupId: settings.stream.groupId,
      deserializers: stringDeserializers,
      autocommit: false,
      // Few messages wait inside the client: backpressure is ours (per partition).
      highWaterMark: settings.stream.maxInFlightPerPartition * 2,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      maxWaitTime: fetchWaitMs(settings.requestTimeoutMs),
    })
  }

  /** Joins the group and starts consuming; rejects when that fails (brokers unreachable at start). */
  async start(): Promise<void> {
    const topic = this.settings.stream.inputTopic
    await this.open(false)
    this.consumer.on('consumer:group:join', () => this.handlers.assigned())
    this.consumer.on('consumer:lag', (lag) => (this.lag = lag.get(topic) ?? []))
    // Unmeasurable (brokers unreachable: the consumer reports that itself): no figure rather than a stale one.
    this.consumer.on('consumer:lag:error', () => (this.lag = []))
    this.consumer.startLagMonitoring({ topics: [topic] }, LAG_INTERVAL_MS)
  }

  pause(): void {
    this.paused = true
    this.stream?.pause()
  }

  resume(): void {
    this.paused = false
    this.stream?.resume()
  }

  /** Whether this member owns the partition now (true before the first assignment is known). */
  owns(topic: string, partition: number): boolean {
    const assignments = this.consumer.assignments
    if (!assignments) return true
    for (const a of assignments) if (a.topic === topic && a.partitions.includes(partition)) return true
    return false
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

  /** Commits past `message` through the consumer: for a message of a stream that ended (its own commit would wait on it for ever). */
  commitDirectly(message: Msg): Promise<void> {
    return this.consumer.commit({ offsets: [{ topic: message.topic, partition: message.partition, offset: message.offset + 1n, leaderEpoch: message.leaderEpoch }] })
  }

  /** Stops intake and lag measurements; the stream and the group stay (commits still go through). */
  stop(): void {
    this.closing = true
    if (this.retry) clearTimeout(this.retry)
    this.retry = null
    this.stream?.pause()
    this.consumer.stopLagMonitoring()
  }

  async close(): Promise<void> {
    this.stop()
    this.state = 'closed'
    await this.stream?.close().catch(() => {})
    await this.consumer.close(true).catch(() => {})
  }

  private async open(again: boolean): Promise<void> {
    const stream = await this.consumer.consume({ topics: [this.settings.stream.inputTopic], mode: 'committed', fallbackMode: 'earliest', autocommit: false })
    if (this.closing) {
      await stream.close().catch(() => {})
      return
    }
    this.stream = stream
    this.state = 'consuming'
    this.attempt = 0
    if (again) this.handlers.reopened()
    stream.on('data', this.handlers.message)
    stream.on('error', (err: Error) => {
      this.lastError = errorMessage(err)
      this.log.error({ error: this.lastError }, 'stream consumer error')
    })
    stream.once('close', () => this.ended(stream))
    if (this.paused) stream.pause()
  }

  private ended(stream: MessagesStream<string, string, string, string>): void {
    if (stream !== this.stream || this.closing) return
    this.stream = null
    this.state = 'reconnecting'
    this.log.warn({ error: this.lastError }, 'stream mode: the input stream ended; consuming again')
    this.reopenLater()
  }

  private reopenLater(): void {
    const wait = Math.min(MAX_REOPEN_BACKOFF_MS, this.settings.retryBackoffMs * 2 ** this.attempt++)
    this.retry = setTimeout(() => {
      this.retry = null
      this.open(true).then(
        () => {
          if (this.closing) return
          this.reopens++
          this.log.info({ input: this.settings.stream.inputTopic }, 'stream mode: consuming again')
        },
        (err: unknown) => {
          this.lastError = errorMessage(err)
          this.log.warn({ error: this.lastError, retry_in_ms: Math.min(MAX_REOPEN_BACKOFF_MS, this.settings.retryBackoffMs * 2 ** this.attempt) }, 'stream mode: cannot consume yet; retrying')
          if (!this.closing) this.reopenLater()
        },
      )
    }, wait)
  }
}
