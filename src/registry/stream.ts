// The model stream: ModelDescriptor records on a Kafka topic (key = model name), each one a
// version arriving by the same pipeline as an upload. Every instance reads every record:
// its consumer group is the configured prefix plus the instance name. Records are taken one
// at a time, and an offset is committed once its version is judged (at least once). At most
// MAX_HELD records are held (queued or being judged): the consumer pauses meanwhile, so a
// backlog of large models waits in Kafka, not in memory. A record that cannot become a
// version is committed as rejected; one that failed for another reason (a full disk) is not:
// it is tried again, with backoff, before any record after it (a replayed one's unreachable location
// a few times only: stream-history.ts). A record replayed (a new group reads from the start) is
// recognised by its sha256 and skipped once that version is judged: by the sha256 it carries, unread.
import { EventEmitter } from 'node:events'
import { Consumer, UserError, type Message, type MessagesStream } from '@platformatic/kafka'
import { connectionOptions, errorMessage } from '../kafka/client.ts'
import { KeptStream } from '../kafka/kept-stream.ts'
import type { Component, Logger, MetricsSink } from '../types.ts'
import type { RepositoryConfig } from './config.ts'
import type { Registry } from './registry.ts'
import { SerialQueue } from '../serial-queue.ts'
import { delay } from '../at-most.ts'
import { followGroup } from './stream-group.ts'
import type { CatchUp } from './catch-up.ts'
import { refusal, RESULTS, retryDelay, type Result } from './stream-judge.ts'
import { handleRecord } from './stream-record.ts'

export type Raw = Message<string, Buffer, string, string>

const passthrough = (data?: Buffer): Buffer | undefined => data
/** A judged record's offset commit is sent this many times at most (1 s, then 2 s apart). */
export const COMMIT_ATTEMPTS = 3
/** Rejections kept for /readyz. */
const RECENT = 10
/** Records held at once, queued or being judged (each up to max_model_bytes): the consumer pauses at this many. */
export const MAX_HELD = 2
/** What one fetch asks for (one under way at a pause still lands in the client); a larger record still comes whole. */
const FETCH_MAX_BYTES = 1024 * 1024

/** `record` once a record is judged: its result, the model it names, and the reason when rejected. */
export interface ModelStreamEvents {
  record: [result: Result, model: string, reason: string | null]
}

export class ModelStream extends EventEmitter<ModelStreamEvents> implements Component {
  private readonly registry: Registry
  private readonly repository: RepositoryConfig
  private readonly settings: NonNullable<RepositoryConfig['kafka']>
  private readonly log: Logger
  private readonly consumer: Consumer<string, Buffer, string, string>
  /** Opened again, with backoff, when it ends or the consumer loses its group (a broker outage). */
  private readonly messages: KeptStream<MessagesStream<string, Buffer, string, string>>
  /** Per partition, the offset after the last record received: a new stream delivers again the records still held here. */
  private readonly next = new Map<number, bigint>()
  /** Records are judged one after another, in offset order. */
  private readonly records = new SerialQueue()
  private readonly counts: Record<Result, number> = { accepted: 0, duplicate: 0, rejected: 0 }
  /** The last RECENT rejections: records refused (no version), and versions the pipeline rejected. */
  private readonly recent: { model: string; version: number | null; reason: string; at: string }[] = []
  /** The record being tried again after an unexpected failure, for /readyz. */
  private retrying: { model: string; offset: string; attempts: number; error: string } | null = null
  /** Records received and not finished (queued or being judged); never above MAX_HELD. */
  private held = 0
  private peakHeld = 0
  /** Whether the consumer is paused because MAX_HELD records are held. */
  private paused = false
  /** Aborted by close(): a record waiting for its retry stops waiting, uncommitted. */
  private readonly closing = new AbortController()
  readonly groupId: string
  /** Told of each record handled: readiness waits for it to reach the topic's end (the registry owns it). */
  private readonly catchUp: CatchUp | undefined

  constructor(registry: Registry, repository: RepositoryConfig, instance: string, log: Logger, catchUp?: CatchUp) {
    super()
    this.catchUp = catchUp
    this.registry = registry
    this.repository = repository
    this.settings = repository.kafka!
    this.log = log
    this.groupId = `${this.settings.group}-${instance}`
    this.consumer = new Consumer({
      ...connectionOptions({ brokers: this.settings.brokers, tls: undefined, sasl: undefined, requestTimeoutMs: 10_000 }, `specserve-models-${instance}`),
      groupId: this.groupId,
      deserializers: { key: (data) => data?.toString('utf8'), value: passthrough, headerKey: (data) => data?.toString('utf8'), headerValue: (data) => data?.toString('utf8') },
      autocommit: false,
      // Few records wait inside the client either: backpressure is ours (MAX_HELD).
      highWaterMark: MAX_HELD,
      maxBytes: FETCH_MAX_BYTES,
      maxWaitTime: 500,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
    })
    const topic = this.settings.topic
    this.messages = new KeptStream(this.consumer, log, {
      topic,
      name: 'model stream',
      // The topic is created as publish-model creates it (where the brokers allow that): a gateway started before the first publish consumes at once, not after a backoff.
      consume: () => this.consumer.metadata({ topics: [topic], autocreateTopics: true }).then(() => this.consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false }), (err: unknown) => {
        // Brokers that create no topic (auto.create.topics.enable=false) and none by this name yet:
        // nothing to catch up to. The client turns the brokers' UNKNOWN_TOPIC_OR_PARTITION into this UserError, nothing else.
        if (err instanceof UserError && err.message === `Unknown topic ${topic}.`) catchUp?.topicMissing()
        throw err
      }),
      opened: (stream) => {
        stream.on('data', (message: Raw) => this.receive(message))
        // The records of a fetch are pushed after its 'fetch' event, and delivered by the next ticks.
        stream.on('fetch', () => setImmediate(() => this.fetchedTo(stream)))
      },
      backoffMs: retryDelay,
    })
    followGroup(this.consumer, topic, log, catchUp)
    catchUp?.follow({ error: () => this.messages.lastError, retrying: () => this.retrying })
  }

  /**
   * Tells the catch-up where the consumer fetches next, once every record fetched before it is
   * handled (none held, none waiting in the stream): past a transaction's marker, which takes
   * an offset (counted in the topic's end) but is never delivered as a record.
   */
  private fetchedTo(stream: MessagesStream<string, Buffer, string, string> | null): void {
    if (!this.catchUp || stream === null || stream !== this.messages.stream || this.held > 0 || stream.readableLength > 0) return
    const prefix = `${this.settings.topic}:`
    for (const [key, offset] of stream.offsetsToFetch) if (key.startsWith(prefix)) this.catchUp.fetched(Number(key.slice(prefix.length)), offset)
  }

  async start(): Promise<void> {
    await this.messages.start()
    if (this.messages.state === 'consuming') this.log.info({ topic: this.settings.topic, group: this.groupId }, 'model stream: consuming model descriptors')
  }

  /** Takes a record after the ones before it, in offset order; the consumer pauses while MAX_HELD are held. */
  receive(message: Raw): void {
    if (message.offset < (this.next.get(message.partition) ?? 0n)) return // held already: delivered again by a new stream
    this.next.set(message.partition, message.offset + 1n)
    this.held++
    if (this.held > this.peakHeld) this.peakHeld = this.held
    this.flow()
    // A record that could not be taken must not stop the ones after it.
    void this.records.run(() => this.takeHeld(message)).catch((err: unknown) => this.log.error({ error: errorMessage(err) }, 'model stream: a record could not be taken'))
  }

  private async takeHeld(message: Raw): Promise<void> {
    try {
      await this.take(message)
    } finally {
      this.held--
      this.flow()
      this.fetchedTo(this.messages.stream)
    }
  }

  /**
   * Pauses the consumer once MAX_HELD records are held and resumes it when one is done. A paused
   * stream emits no more records (the client keeps them, and stops fetching), so none is skipped:
   * they come in offset order after the resume.
   */
  private flow(): void {
    const full = this.held >= MAX_HELD
    if (full === this.paused || this.closing.signal.aborted) return
    this.paused = full
    if (full) this.messages.pause()
    else this.messages.resume()
  }

  private async take(message: Raw): Promise<void> {
    // Closing: a record behind one left uncommitted (waiting for its retry) must not commit past it.
    if (this.closing.signal.aborted) return
    const model = message.key ?? ''
    let result: Result
    let reason: string | null
    let version: number | null = null
    for (let attempt = 1; ; attempt++) {
      try {
        ;[result, reason, version] = await handleRecord(message, this.registry, this.repository, this.log)
        break
      } catch (err) {
        // Refused (its fault, or a bug failing alike for ever), or replayed and its location's server gone (stream-history.ts).
        const refused = refusal(err, attempt, message, this.catchUp, this.log, this.settings.topic)
        if (refused !== null) {
          ;[result, reason] = refused
          break
        }
        // A system error (a full disk, a failing repository) or a location out of reach for now is
        // not the record's fault: committing would lose it. Later records wait, as committing one of
        // them would commit this one too.
        if (!(await this.retryLater(message, attempt, errorMessage(err)))) return // closing: read again at the next start
      }
    }
    this.retrying = null
    this.counts[result]++
    // Refused here (no version), or a version the pipeline rejected (logged there): either is listed, with its reason.
    if (result === 'rejected') {
      this.recent.push({ model, version, reason: reason ?? 'rejected', at: new Date().toISOString() })
      if (this.recent.length > RECENT) this.recent.shift()
    }
    // Judged: its version serves (or was refused) now; readiness need not wait for the commit.
    this.catchUp?.judged(message.partition, message.offset)
    await this.commitPast(message)
    this.emit('record', result, model, reason)
  }

  /**
   * Commits past a judged record, through the consumer, not the record's stream: a stream's
   * commit waits for the group to settle, and never settles once that stream is gone (a broker
   * outage), which would wedge every record after this one. Records are committed one at a
   * time, in offset order. A failed commit is tried again (COMMIT_ATTEMPTS in all, with the
   * records' backoff): a model stream is quiet, and no later record may come to commit past it.
   * Left uncommitted, the record is read again at the next start and skipped (held, or its sha256).
   */
  private async commitPast(message: Raw): Promise<void> {
    const offsets = [{ topic: message.topic, partition: message.partition, offset: message.offset + 1n, leaderEpoch: message.leaderEpoch }]
    const offset = String(message.offset)
    for (let attempt = 1; ; attempt++) {
      // Not in its group (a broker outage): a commit would make the client rejoin by itself, beside our own reopen.
      if (!this.consumer.isActive()) return this.log.warn({ offset }, 'model stream: not committed, the consumer is not in its group; the record may be read again')
      try {
        await this.consumer.commit({ offsets })
        return
      } catch (err) {
        const error = errorMessage(err)
        if (attempt >= COMMIT_ATTEMPTS || this.closing.signal.aborted) return this.log.warn({ offset, attempts: attempt, error }, 'model stream: commit failed; the record may be read again')
        this.log.warn({ offset, attempt, retry_in_ms: retryDelay(attempt), error }, 'model stream: commit failed; tried again')
        if (!(await this.wait(retryDelay(attempt)))) return
      }
    }
  }

  /**
   * Waits before a record is tried again, its offset uncommitted (the records after it wait,
   * MAX_HELD of them at most); false once the stream closes.
   */
  private retryLater(message: Raw, attempt: number, error: string): Promise<boolean> {
    const delay = retryDelay(attempt)
    const model = message.key ?? ''
    this.retrying = { model, offset: String(message.offset), attempts: attempt, error }
    this.log.error({ model, offset: String(message.offset), attempt, retry_in_ms: delay, error, topic: this.settings.topic }, 'model stream: a record failed unexpectedly; not committed, tried again')
    return this.wait(delay)
  }

  /** Waits `ms` (a timer fake timers drive); false at once when the stream closes. */
  private async wait(ms: number): Promise<boolean> {
    await delay(ms, this.closing.signal)
    return !this.closing.signal.aborted
  }

  status(): unknown {
    return { topic: this.settings.topic, group: this.groupId, state: this.messages.state, last_error: this.messages.lastError, ...this.counts, recent_rejections: this.recent, retrying: this.retrying, held: this.held, peak_held: this.peakHeld, paused: this.paused }
  }

  collect(out: MetricsSink): void {
    out.counter('specserve_model_stream_records', 'Model descriptors read from the models topic, by result.', RESULTS.map((result) => [{ result }, this.counts[result]] as const))
  }

  /** Waits for the records taken so far (tests). */
  idle(): Promise<void> {
    return this.records.idle()
  }

  async close(): Promise<void> {
    this.closing.abort()
    await this.messages.close()
    await this.records.idle()
    await this.consumer.close(true).catch(() => undefined)
  }
}
