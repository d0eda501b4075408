// Serving records cut into produce requests: by count, by bytes (at least one record), and
// never a record over max_record_bytes or one that cannot be encoded (refused, reported, the
// rest go on).
import { describe, expect, it } from 'vitest'
import { allEntries, takeEntries } from '../../src/output/entries.ts'
import type { PendingRecord } from '../../src/output/record.ts'

/** A record of `bytes` value bytes under key `key`. */
const record = (key: string, bytes: number): PendingRecord => ({ key, encode: () => 'v'.repeat(bytes) }) as unknown as PendingRecord
/** A record whose encoding throws, as JSON over V8's longest string would. */
const unencodable = (key: string): PendingRecord => ({ key, encode: () => { throw new RangeError('Invalid string length') } }) as unknown as PendingRecord
const encodes = (err: unknown): never => {
  throw new Error(`every record here encodes: ${String(err)}`)
}

describe('takeEntries', () => {
  it('takes up to batchSize records and batchBytes of keys and values with Kafka\'s framing, at least one', () => {
    const records = ['a', 'b', 'c', 'd'].map((k) => record(k, 49)) // 50 bytes each with the key, 70 framed
    const refused: number[] = []
    expect(takeEntries(records, { batchSize: 3, batchBytes: 1000, maxRecordBytes: 1000 }, (n) => refused.push(n), encodes)).toMatchObject({ taken: 3 })
    // The batch's header (61) and two framed records (140) fit in 201 bytes; a third would not.
    expect(takeEntries(records, { batchSize: 10, batchBytes: 200, maxRecordBytes: 1000 }, (n) => refused.push(n), encodes).taken).toBe(1)
    const byBytes = takeEntries(records, { batchSize: 10, batchBytes: 201, maxRecordBytes: 1000 }, (n) => refused.push(n), encodes)
    expect(byBytes.entries.map((e) => e.key)).toEqual(['a', 'b'])
    expect(byBytes.taken).toBe(2)
    expect(takeEntries([record('big', 500)], { batchSize: 10, batchBytes: 100, maxRecordBytes: 1000 }, (n) => refused.push(n), encodes).entries).toHaveLength(1)
    expect(refused).toEqual([])
  })

  it('refuses a record over maxRecordBytes, reports its size, and takes the ones after it', () => {
    const refused: number[] = []
    const { entries, taken } = takeEntries([record('a', 9), record('huge', 996), record('b', 9)], { batchSize: 10, batchBytes: 10_000, maxRecordBytes: 999 }, (n) => refused.push(n), encodes)
    expect(entries.map((e) => e.key)).toEqual(['a', 'b'])
    expect(taken).toBe(3)
    expect(refused).toEqual([1000])
    expect(allEntries([record('huge', 996), record('c', 1)], 999, () => {}, encodes).map((e) => e.key)).toEqual(['c'])
  })

  it('refuses a record that cannot be encoded, reports why, and takes the ones after it: batched and spooled alike', () => {
    const failed: string[] = []
    const failing = (err: unknown) => failed.push(String(err))
    const { entries, taken } = takeEntries([record('a', 9), unencodable('bad'), record('b', 9)], { batchSize: 10, batchBytes: 10_000, maxRecordBytes: 999 }, () => {}, failing)
    expect([entries.map((e) => e.key), taken]).toEqual([['a', 'b'], 3])
    expect(allEntries([unencodable('bad'), record('c', 1)], 999, () => {}, failing).map((e) => e.key)).toEqual(['c'])
    expect(failed).toEqual(['RangeError: Invalid string length', 'RangeError: Invalid string length'])
  })
})
