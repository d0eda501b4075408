// Publishes serving records to Kafka without slowing or failing a predict, and without
// losing a record. write() only appends to an in-memory buffer; one background pump sends
// batches, one at a time, so order is kept. When a send fails (broker down) the batch and
// everything after it go to the spool file, and from then on records flow through the
// spool until it is replayed in order from its head; only then does direct publishing
// resume. A full buffer overflows to the spool too. If even the spool cannot take a
// record, it is counted and logged as dropped, never silently lost. Produce requests, and
// the broker's refusals, are publisher.ts's; appending to, replaying and compacting the
// spool, spooler.ts's.
import { errorMessage } from '../kafka/client.ts'
import { recordProducer } from '../kafka/thread-producer.ts'
import { spoolFile, type KafkaSettings } from '../kafka/config.ts'
import { takeEntries } from './entries.ts'
import type { PendingRecord } from './record.ts'
import type { Component, Logger, MetricsSink } from '../types.ts'
import type { RecordSink, SinkStatus } from './sink.ts'
import { DROP_LOG_INTERVAL_MS, Publisher, type RecordProducer } from './publisher.ts'
import { Spool, type SpoolEntry } from './spool.ts'
import { Spooler, type Inflight } from './spooler.ts'

export type { RecordProducer } from './publisher.ts'

interface Retry {
  readonly done: Promise<void>
  wake(): void
}

export class KafkaSink implements RecordSink, Component {
  readonly kind = 'kafka'
  readonly settings: KafkaSettings
  private readonly log: Logger
  private readonly broker: Publisher
  private readonly spool: Spool
  private readonly spooler: Spooler
  private buffer: PendingRecord[] = []
  private pumping: Promise<void> | null = null
  private inflight: Inflight | null = null
  private timer: NodeJS.Timeout | null = null
  private retry: Retry | null = null
  private closing = false
  /** The shutdown grace ran out: memory has gone to the spool, nothing more is sent. */
  private abandoned = false
  private closed = false
  private readonly gaveUp: Promise<void>
  private resolveGaveUp!: () => void
  private dropped = 0
  private lastDropLog = 0
  /** When the oldest record in the buffer arrived (performance.now()): linger counts from it. */
  private bufferedSince = 0
  private readonly flushNow = (): void => {
    this.timer = null
    this.flush()
  }

  /** `producer`: the client's (on a thread of its own with producer_thread), unless given (a test's broker that fails on cue). */
  constructor(settings: KafkaSettings, log: Logger, producer: RecordProducer = recordProducer(settings, log)) {
    this.settings = settings
    this.log = log
    this.broker = new Publisher(settings, log, producer, this.drop, () => this.abandoned, this.stalled)
    this.spool = new Spool(spoolFile(settings), settings.spoolMaxBytes)
    this.spooler = new Spooler(this.spool, settings, log, this.broker, () => this.abandoned, this.drop, this.tooLarge, this.unencodable)
    this.gaveUp = new Promise((resolve) => (this.resolveGaveUp = resolve))
  }

  /** Takes the spool (throws if another process holds it) and probes the brokers in the background. */
  start(): void {
    const waiting = this.spool.open()
    if (this.spool.ignoredPos !== null) this.log.warn({ spool: this.spool.file, pos: this.spool.ignoredPos }, 'spool .pos does not fit its spool file (not where a replay stops): replaying the whole spool, some records may be published twice')
    if (waiting) this.log.info({ spool: this.spool.file, records: waiting }, 'replaying serving records spooled by a previous run')
    void this.broker.probe().then(() => this.flush())
  }

  write(record: PendingRecord): void {
    if (this.closed) {
      this.drop(1, 'the record sink is closed')
      return
    }
    // One clock read and at most two timers per batch: linger from its first record, and at once when it fills.
    const buffered = this.buffer.push(record)
    if (buffered === 1) this.bufferedSince = performance.now()
    // A full buffer goes to the spool now, not at the linger: memory stays bounded while a send hangs.
    if (buffered === this.settings.batchSize || buffered === this.settings.bufferRecords) {
      if (this.timer) clearTimeout(this.timer)
      this.timer = setTimeout(this.flushNow, 0)
    } else if (this.timer === null) this.timer = setTimeout(this.flushNow, this.settings.lingerMs)
  }

  status(): SinkStatus {
    return {
      kind: this.kind,
      state: this.closed ? 'closed' : this.broker.state,
      brokers: this.settings.brokers,
      topic: this.settings.topic,
      buffered: this.inMemory(),
      spooled_records: this.spool.records,
      spool_bytes: this.spool.bytes,
      spool_file: this.spool.file,
      published: this.broker.published,
      batches: this.broker.batches,
      dropped: this.dropped,
      last_error: this.broker.lastError,
    }
  }

  collect(out: MetricsSink): void {
    const none = {}
    out.gauge('specserve_output_buffered_records', 'Serving records waiting in memory for Kafka.', [[none, this.inMemory()]])
    out.gauge('specserve_output_spooled_records', 'Serving records in the local spool file (Kafka was unreachable).', [[none, this.spool.records]])
    out.gauge('specserve_output_spool_bytes', 'Size of the local spool file on disk (replayed records not yet compacted away included).', [[none, this.spool.bytes]], 'By')
    out.counter('specserve_output_published_records', 'Serving records acknowledged by Kafka.', [[none, this.broker.published]])
    out.counter('specserve_output_batches', 'Produce requests acknowledged by Kafka (records per request: published_records / batches).', [[none, this.broker.batches]])
    out.counter('specserve_output_dropped_records', 'Serving records dropped: the spool full or unwritable, a record over max_record_bytes, refused by the broker as too large or that cannot be encoded, a malformed spool line, a spool file cut short.', [[none, this.dropped]])
  }

  async close(graceMs: number): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const giveUp = setTimeout(() => this.abandon(), graceMs)
    // Publish until done or the grace runs out, but do not wait on a broker known to be down:
    // one more attempt now, and at its failure the rest stays safely in the spool.
    let attempts = 0
    try {
      while (!this.abandoned) {
        // A send hanging on a dead broker must not outlast the grace: abandon() ends the wait,
        // and the producer is force-closed below, which fails that send.
        if (this.pumping) await Promise.race([this.pumping, this.gaveUp])
        else if (this.retry) {
          if (attempts++ > 0) break
          this.retry.wake()
        } else if (this.buffer.length || this.spool.pending) this.flush()
        else break
      }
    } finally {
      clearTimeout(giveUp)
      if (this.timer) clearTimeout(this.timer)
      this.timer = null
    }
    const left = this.inMemory()
    this.abandon()
    this.closed = true
    this.spool.close()
    if (this.spool.records) this.log.warn({ spool: this.spool.file, records: this.spool.records, unsent_in_memory: left }, 'shutdown: serving records left in the spool for the next start')
    else this.log.info({ published: this.broker.published }, 'serving records flushed')
    // A send still hanging on a dead broker is abandoned (its records are on disk already):
    // force-closing fails it; do not wait for that.
    const closing = this.broker.close()
    if (!this.pumping) await closing
  }

  /** Starts the pump when idle; while it cannot send, moves the buffer to disk so memory stays bounded. */
  private flush(): void {
    if (this.closed || this.abandoned) return
    const idle = this.pumping === null && this.retry === null
    // Spooling (the brokers failed or stopped answering): records wait on disk, and are sent from there.
    const spooling = this.broker.state === 'spooling'
    if (this.buffer.length && (this.buffer.length >= this.settings.bufferRecords || spooling || (!idle && this.spool.pending))) this.spoolBuffered()
    if (!idle) return
    this.pumping = this.pump().catch((err: unknown) => this.pumpFailed(err)).finally(() => {
      this.pumping = null
      // The next batch goes when it is full or its oldest record has lingered long enough,
      // not as soon as the previous one is acknowledged: under load that would make every
      // round trip a produce request of a few records. A timer armed during the send (by a
      // record that came after the oldest one's own timer fired) would wait a linger from that
      // record: the oldest one's counts. One timer per send.
      if (this.buffer.length && this.retry === null && !this.closing) {
        if (this.timer) clearTimeout(this.timer)
        this.timer = setTimeout(this.flushNow, Math.max(0, this.settings.lingerMs - (performance.now() - this.bufferedSince)))
      }
    })
  }

  /** The one sender: replays the spool from its head, or sends the buffer once the spool is empty. */
  private async pump(): Promise<void> {
    while (!this.abandoned) {
      if (this.spool.pending) {
        this.spoolBuffered() // the buffer is newer than anything on disk: it queues behind it
        if (!(await this.spooler.replayBatch())) return this.abandoned ? undefined : this.retryLater()
        if (this.abandoned) return
        if (!this.spool.pending) this.log.info({ published: this.broker.published }, 'spool replayed: publishing directly again')
        // Between batches, when no read or commit can run: gives the replayed head's disk space back.
        else if (this.spool.compactable) await this.spooler.compact()
        continue
      }
      if (this.buffer.length === 0) return
      const { entries, leftBehind } = this.takeBatch()
      if (entries.length === 0) {
        // Every record taken was over max_record_bytes (dropped).
        if (leftBehind) continue
        return
      }
      const inflight: Inflight = { entries, spooledEnds: null, unspoolable: null }
      this.inflight = inflight
      const done = await this.broker.publish(inflight.entries)
      this.inflight = null
      if (this.abandoned) return
      // An overflow spooled this batch while it was on the wire: what went is skipped on replay.
      if (inflight.spooledEnds !== null && done > 0) this.spool.commit(inflight.spooledEnds[done - 1]!, done)
      if (done === inflight.entries.length) {
        // Records that did not fit have waited already, and a full batch need not: send on.
        // What came in during the send waits out its linger (see flush).
        if (leftBehind || this.buffer.length >= this.settings.batchSize || this.spool.pending) continue
        return
      }
      // Only what was not acknowledged goes to the spool (all of it is there already if spooledEnds is set).
      const rest = done === 0 ? inflight.entries : inflight.entries.slice(done)
      if (inflight.unspoolable !== null) this.drop(rest.length, inflight.unspoolable)
      else if (inflight.spooledEnds === null) this.spooler.append(rest)
      return this.retryLater()
    }
  }

  /** One batch from the head of the buffer; `leftBehind`: records were waiting that did not fit. */
  private takeBatch(): { entries: SpoolEntry[]; leftBehind: boolean } {
    const { entries, taken } = takeEntries(this.buffer, this.settings, this.tooLarge, this.unencodable)
    this.buffer = taken === this.buffer.length ? [] : this.buffer.slice(taken)
    return { entries, leftBehind: this.buffer.length > 0 }
  }

  /** Not a send failing (those spool): a bug or an I/O error reading the spool. Logged, and tried again after the backoff. */
  private pumpFailed(err: unknown): void {
    this.broker.lastError = errorMessage(err)
    this.log.error({ error: this.broker.lastError, spool: this.spool.file }, 'serving record publishing failed; retrying after the backoff')
    if (!this.abandoned && this.retry === null) this.retryLater()
  }

  /** Records in memory only: a batch on the wire that an overflow spooled counts as spooled, not twice. */
  private inMemory(): number {
    const inflight = this.inflight
    return this.buffer.length + (inflight !== null && inflight.spooledEnds === null ? inflight.entries.length : 0)
  }

  private retryLater(): void {
    let wake!: () => void
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => wake(), this.settings.retryBackoffMs)
      wake = () => {
        clearTimeout(timer)
        if (this.retry?.done === done) this.retry = null
        resolve()
        this.flush()
      }
    })
    this.retry = { done, wake }
  }

  /** Moves the in-memory records to the spool, the batch on the wire first so order holds. */
  private spoolBuffered(): void {
    const records = this.buffer
    if (records.length) this.buffer = []
    this.spooler.moveFromMemory(this.inflight, records)
  }

  /** A record the broker would refuse at every attempt: sending it would stall every record behind it. */
  private readonly tooLarge = (size: number): void =>
    this.drop(1, `a serving record of ${size} bytes is over output.kafka.max_record_bytes (${this.settings.maxRecordBytes})`)

  /** A record whose JSON cannot be made: dropped, as it would fail at every attempt. */
  private readonly unencodable = (err: unknown): void => this.drop(1, `a serving record could not be encoded: ${errorMessage(err)}`)

  private readonly drop = (count: number, reason: string): void => {
    this.dropped += count
    const now = Date.now()
    if (now - this.lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.lastDropLog = now
      this.log.error({ dropped: this.dropped, reason }, 'serving records dropped')
    }
  }

  /** The brokers stopped answering (spooling now): what waits in memory goes to disk, the batch on the wire first. */
  private readonly stalled = (): void => {
    if (!this.closed) this.spoolBuffered()
  }

  /** The grace period is over: everything in memory goes to disk and nothing more is sent. */
  private abandon(): void {
    if (this.abandoned) return
    this.spoolBuffered()
    // The batch on the wire is abandoned with its send; the spool could not take it either.
    if (this.inflight && this.inflight.unspoolable !== null) this.drop(this.inflight.entries.length, this.inflight.unspoolable)
    this.abandoned = true
    this.resolveGaveUp()
    this.retry?.wake()
  }
}
