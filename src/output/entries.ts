// Serving records encoded into what the sink sends and spools: key and value text, within
// the limits of one produce request (batch_size, batch_bytes) and of one message
// (max_record_bytes: a record over it is one the broker would refuse at every attempt).
import { messageBytes } from '../kafka/client.ts'
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
 * instead. `taken`: how many records of `records` it used up (batched or refused).
 */
export function takeEntries(records: readonly PendingRecord[], limits: EntryLimits, tooLarge: (bytes: number) => void): { entries: SpoolEntry[]; taken: number } {
  const entries: SpoolEntry[] = []
  let bytes = 0
  let taken = 0
  for (; taken < records.length && taken < limits.batchSize; taken++) {
    const record = records[taken]!
    const entry: SpoolEntry = { key: record.key, value: record.encode() }
    const size = entrySize(entry)
    if (size > limits.maxRecordBytes) {
      tooLarge(size)
      continue
    }
    if (entries.length > 0 && bytes + size > limits.batchBytes) break // (encoded again for the next batch: once per full batch)
    entries.push(entry)
    bytes += size
  }
  return { entries, taken }
}

/** Every record encoded, each over maxRecordBytes passed to `tooLarge` instead. */
export function allEntries(records: readonly PendingRecord[], maxRecordBytes: number, tooLarge: (bytes: number) => void): SpoolEntry[] {
  return takeEntries(records, { batchSize: Infinity, batchBytes: Infinity, maxRecordBytes }, tooLarge).entries
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
