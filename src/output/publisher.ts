// The record sink's side of the broker: produce requests (a request refused as too large is
// sent again in halves; a single record still refused is dropped, so it never holds up the
// records behind it), what the broker acknowledged, whether it is reachable, and the last
// error it gave. The sink (kafka.ts) decides what to send, when, and what goes to the spool.
import { errorMessage, messageBytes, sendInHalves } from '../kafka/client.ts'
import { spoolFile, type KafkaSettings } from '../kafka/config.ts'
import type { Logger } from '../types.ts'
import type { SpoolEntry } from './spool.ts'
import type { RecordProducer } from '../kafka/thread-producer.ts'

export const DROP_LOG_INTERVAL_MS = 10_000

export type { RecordProducer }

export class Publisher {
  /** `spooling`: the last send failed; records wait on disk until one succeeds. */
  state: 'connecting' | 'connected' | 'spooling' = 'connecting'
  lastError: string | null = null
  published = 0
  /** Produce requests acknowledged: published / batches is the records a request carried. */
  batches = 0
  private lastRefusedLog = 0
  /** Spooling because the start's probe went unanswered (not a send): its late answer ends it. */
  private spooledByProbe = false
  private readonly settings: KafkaSettings
  private readonly log: Logger
  private readonly producer: RecordProducer
  /** Where dropped records are counted (the sink's one count). */
  private readonly drop: (count: number, reason: string) => void
  /** Asked between the halves of a split request: a shutdown stops sending. */
  private readonly stopped: () => boolean
  /** Told when a request's silence turned the state to spooling: what waits in memory goes to disk now. */
  private readonly onStall: () => void

  constructor(settings: KafkaSettings, log: Logger, producer: RecordProducer, drop: (count: number, reason: string) => void, stopped: () => boolean, onStall: () => void = () => {}) {
    this.settings = settings
    this.log = log
    this.producer = producer
    this.drop = drop
    this.stopped = stopped
    this.onStall = onStall
  }

  /** Asks the brokers for the topic (creating it when the broker lets clients do that). */
  async probe(): Promise<void> {
    // A thread loading the client (half a second of CPU) is not a broker that does not answer.
    await this.producer.ready?.()
    // Nothing else asks at start, when no record comes: its own timer says so if the brokers do not answer.
    const stall = setTimeout(this.probeStalled, this.settings.requestTimeoutMs).unref()
    try {
      await this.producer.metadata({ topics: [this.settings.topic], autocreateTopics: true })
      // The metadata's answer says the brokers answer, not that sends go through: it ends only what it began.
      if (this.state === 'connecting' || this.spooledByProbe) this.reached()
    } catch (err) {
      this.failed(err)
    } finally {
      clearTimeout(stall)
    }
  }

  /**
   * A request on the wire for request_timeout_ms (its own timer fired): the brokers accept
   * connections but do not answer (a hung broker, a proxy in front of none). The client's own
   * retries over each of its steps would take tens of seconds to fail; the records go to the
   * spool now and the state says so. The request carries on: its answer, if one comes, says
   * connected again. A send is timed whole (the client's retries included).
   */
  private stalled(byProbe: boolean): void {
    // Once a send has been acknowledged, a probe still out says nothing about the brokers.
    if (this.state === 'spooling' || this.stopped() || (byProbe && this.batches > 0)) return
    this.failed(new Error(`no answer from the brokers within request_timeout_ms (${this.settings.requestTimeoutMs} ms)`))
    this.spooledByProbe = byProbe
    this.onStall()
  }

  private readonly probeStalled = (): void => this.stalled(true)
  private readonly sendStalled = (): void => this.stalled(false)

  /** Sends the entries; returns how many from the head are done with (acknowledged or refused). A failure is recorded (the caller spools the rest). */
  async publish(entries: readonly SpoolEntry[]): Promise<number> {
    const out = await sendInHalves(entries, this.send, this.refused, this.stopped)
    if (out.failed) this.failed(out.error)
    return out.done
  }

  /** A send still hanging on a dead broker fails: its records are on disk already. */
  close(): Promise<void> {
    return this.producer.close(true).catch(() => {})
  }

  private failed(err: unknown): void {
    this.spooledByProbe = false
    this.lastError = errorMessage(err)
    if (this.state !== 'spooling') {
      // Not always unreachable: a broker that answers with an error (a topic it will not create, an ACL) spools too.
      this.log.warn({ brokers: this.settings.brokers, error: this.lastError, spool: spoolFile(this.settings) }, 'serving records not acknowledged by kafka: spooling them to disk')
    }
    this.state = 'spooling'
  }

  /** One produce request; rejects with the client's error. */
  private readonly send = async (entries: readonly SpoolEntry[]): Promise<void> => {
    const topic = this.settings.topic
    await this.producer.ready?.() // at once unless a new thread loads the client
    // One timer per produce request (a batch of records), not per record.
    const stall = setTimeout(this.sendStalled, this.settings.requestTimeoutMs).unref()
    try {
      await this.producer.send({
        messages: entries.map((e) => (e.key === null ? { topic, value: e.value } : { topic, key: e.key, value: e.value })),
      })
    } finally {
      clearTimeout(stall)
    }
    this.published += entries.length
    this.batches++
    this.reached()
  }

  /** A request was answered: connected (again, after spooling: said, and the spool replays). */
  private reached(): void {
    if (this.state === 'connected') return
    if (this.state === 'spooling') this.log.info({ brokers: this.settings.brokers }, 'kafka reachable again: replaying the spool')
    this.state = 'connected'
    this.lastError = null
    this.spooledByProbe = false
  }

  /** A single record the broker refuses as too large, at every attempt: dropped. */
  private readonly refused = (entry: SpoolEntry, err: unknown): void => {
    this.lastError = errorMessage(err)
    const size = messageBytes(entry.key, entry.value)
    const now = Date.now()
    if (now - this.lastRefusedLog >= DROP_LOG_INTERVAL_MS) {
      this.lastRefusedLog = now
      this.log.error({ bytes: size, error: this.lastError, topic: this.settings.topic }, "serving record refused by the broker as too large: dropped (set output.kafka.max_record_bytes under the topic's max.message.bytes)")
    }
    this.drop(1, `a serving record of ${size} bytes was refused by the broker as too large`)
  }
}
