// The record sink's side of the spool file: what cannot be sent now is appended (a record
// even the spool cannot take is counted dropped), replayed from the head in order, and the
// replayed head compacted away. The sink (kafka.ts) decides what goes to disk, and when.
import { errorMessage } from '../kafka/client.ts'
import type { KafkaSettings } from '../kafka/config.ts'
import type { Logger } from '../types.ts'
import { allEntries, positionsWithin } from './entries.ts'
import type { Publisher } from './publisher.ts'
import type { PendingRecord } from './record.ts'
import { SpoolFullError, type Spool, type SpoolEntry } from './spool.ts'

/** The batch being sent (kafka.ts's pump), and what an overflow did with it meanwhile. */
export interface Inflight {
  readonly entries: SpoolEntry[]
  /**
   * Set when an overflow spooled this batch while it was being sent (at the spool's head):
   * where each of its entries ends there, so what the broker acknowledged is not replayed.
   */
  spooledEnds: number[] | null
  /**
   * Set when an overflow could not spool this batch (the spool was full) and spooled newer
   * records instead: if its send fails, it is dropped then, never appended behind them.
   */
  unspoolable: string | null
}

export class Spooler {
  private readonly spool: Spool
  private readonly settings: KafkaSettings
  private readonly log: Logger
  private readonly broker: Publisher
  /** The shutdown grace ran out: a replayed batch is not committed past what it knows. */
  private readonly abandoned: () => boolean
  /** Where dropped records are counted (the sink's one count). */
  private readonly drop: (count: number, reason: string) => void
  /** A record over max_record_bytes: dropped, with the sink's reason. */
  private readonly tooLarge: (size: number) => void
  /** A record that cannot be encoded: dropped, with the sink's reason. */
  private readonly unencodable: (err: unknown) => void

  constructor(spool: Spool, settings: KafkaSettings, log: Logger, broker: Publisher, abandoned: () => boolean, drop: (count: number, reason: string) => void, tooLarge: (size: number) => void, unencodable: (err: unknown) => void) {
    this.spool = spool
    this.settings = settings
    this.log = log
    this.broker = broker
    this.abandoned = abandoned
    this.drop = drop
    this.tooLarge = tooLarge
    this.unencodable = unencodable
  }

  /** Moves records from memory to the spool: the batch on the wire first, then `records`, so order holds. */
  moveFromMemory(inflight: Inflight | null, records: readonly PendingRecord[]): void {
    if (inflight && inflight.spooledEnds === null && inflight.unspoolable === null && !this.spool.pending) {
      // Not dropped yet: its send may still succeed; if it fails, pump() drops it.
      try {
        inflight.spooledEnds = this.spool.append(inflight.entries)
      } catch (err) {
        inflight.unspoolable = errorMessage(err)
      }
    }
    if (records.length === 0) return
    const entries = allEntries(records, this.settings.maxRecordBytes, this.tooLarge, this.unencodable)
    if (entries.length) this.append(entries)
  }

  /**
   * Appends the entries; those the spool cannot take are counted dropped: past its size limit
   * the newest (the oldest that fit are kept, in order), on a failing disk all of them.
   */
  append(entries: SpoolEntry[]): void {
    try {
      const kept = this.spool.append(entries, true).length
      if (kept < entries.length) this.drop(entries.length - kept, new SpoolFullError(this.spool.file, this.settings.spoolMaxBytes).message)
    } catch (err) {
      this.drop(entries.length, errorMessage(err))
    }
  }

  /** One batch from the head of the spool, committed as far as it went; false when a send failed. */
  async replayBatch(): Promise<boolean> {
    const { entries: read, ends, end, skipped, lost } = this.spool.read(this.settings.batchSize, this.settings.batchBytes)
    if (lost) {
      this.log.error({ spool: this.spool.file, lost }, 'the spool file is shorter than what was written to it (cut short while the gateway ran): the records past its end are lost')
      this.drop(lost, 'the spool file was cut short')
    }
    if (skipped) {
      this.log.error({ spool: this.spool.file, skipped }, 'malformed lines in the spool file skipped (not records this gateway wrote whole)')
      this.drop(skipped, 'a malformed line in the spool file')
    }
    // Spooled before max_record_bytes applied to them (an older version, a lowered limit): dropped, not replayed for ever.
    const positions = positionsWithin(read, this.settings.maxRecordBytes, this.tooLarge)
    const entries = positions.length === read.length ? read : positions.map((i) => read[i]!)
    const done = entries.length ? await this.broker.publish(entries) : 0
    if (this.abandoned()) return false
    if (done === entries.length) {
      this.spool.commit(end, read.length)
      return true
    }
    // Part of a split batch went: do not send it again.
    if (done > 0) this.spool.commit(ends[positions[done - 1]!]!, positions[done - 1]! + 1)
    return false
  }

  /** A compaction that fails (a full disk) never stops the replay: the spool turns it off for a while, and the head keeps its space meanwhile. */
  async compact(): Promise<void> {
    try {
      await this.spool.compact()
    } catch (err) {
      this.log.error({ spool: this.spool.file, error: errorMessage(err) }, 'spool compaction failed: replayed records keep their disk space until the spool is replayed in full or the gateway restarts')
    }
  }
}
