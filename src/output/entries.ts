// Serving records encoded into what the sink sends and spools: key and value text, within
// the limits of one produce request (batch_size, batch_bytes, Kafka's framing counted) and of one message
// (max_record_bytes: a record over it is one the broker would refuse at every attempt).
import { BATCH_HEADER_BYTES, messageBytes, RECORD_FRAMING_BYTES } from '../kafka/client.ts'
import type { PendingRecord } from './record.ts'
import type { SpoolEntry } from './spool.ts'

export interface EntryLimits {
  readonly batchSize: number
  readonly batchBytes: number
  readonly maxRecordBytes: number
}

const entrySize = (e: SpoolEntry): number => messageBytes(e.key, e.value)

/**
 * Encodes records from the head of `records` into one batch: up to batchSize records and
 * batchBytes (at least one record), passing each record over maxRecordBytes to `tooLarge`
 * instead, and each that cannot be encoded (its JSON over V8's longest string, say) to
 * `unencodable`: either would stall every record behind it, at every attempt. `taken`: how
 * many records of `records` it used up (batched or refused).
 */
export function takeEntries(records: readonly PendingRecord[], limits: EntryLimits, tooLarge: (bytes: number) => void, unencodable: (err: unknown) => void): { entries: SpoolEntry[]; taken: number } {
  const entries: SpoolEntry[] = []
  let bytes = BATCH_HEADER_BYTES
  let taken = 0
  for (; taken < records.length && taken < limits.batchSize; taken++) {
    const record = records[taken]!
    let value: string
    try {
      value = record.encode()
    } catch (err) {
      unencodable(err)
      continue
    }
    const entry: SpoolEntry = { key: record.key, value }
    const size = entrySize(entry)
    if (size > limits.maxRecordBytes) {
      tooLarge(size)
      continue
    }
    if (entries.length > 0 && bytes + size + RECORD_FRAMING_BYTES > limits.batchBytes) break // (encoded again for the next batch: once per full batch)
    entries.push(entry)
    bytes += size + RECORD_FRAMING_BYTES
  }
  return { entries, taken }
}

/** Every record encoded, each over maxRecordBytes passed to `tooLarge` and each that cannot be encoded to `unencodable` instead. */
export function allEntries(records: readonly PendingRecord[], maxRecordBytes: number, tooLarge: (bytes: number) => void, unencodable: (err: unknown) => void): SpoolEntry[] {
  return takeEntries(records, { batchSize: Infinity, batchBytes: Infinity, maxRecordBytes }, tooLarge, unencodable).entries
}

/** Entries already encoded (read back from the spool): the positions of those within maxRecordBytes, each other passed to `tooLarge`. */
export function positionsWithin(entries: readonly SpoolEntry[], maxRecordBytes: number, tooLarge: (bytes: number) => void): number[] {
  const within: number[] = []
  for (let i = 0; i < entries.length; i++) {
    const size = entrySize(entries[i]!)
    if (size <= maxRecordBytes) within.push(i)
    else tooLarge(size)
  }
  return within
}
