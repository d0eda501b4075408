// Serving records cut into produce requests: by count, by bytes (at least one record), and
// never a record over max_record_bytes (refused, reported, the rest go on).
import { describe, expect, it } from 'vitest'
import { allEntries, takeEntries } from '../../src/output/entries.ts'
import type { PendingRecord } from '../../src/output/record.ts'

/** A record of `bytes` value bytes under key `key`. */
const record = (key: string, bytes: number): PendingRecord => ({ key, encode: () => 'v'.repeat(bytes) }) as unknown as PendingRecord

describe('takeEntries', () => {
  it('takes up to batchSize records and batchBytes of keys and values, at least one', () => {
    const records = ['a', 'b', 'c', 'd'].map((k) => record(k, 49)) // 50 bytes each with the key
    const refused: number[] = []
    expect(takeEntries(records, { batchSize: 3, batchBytes: 1000, maxRecordBytes: 1000 }, (n) => refused.push(n))).toMatchObject({ taken: 3 })
    const byBytes = takeEntries(records, { batchSize: 10, batchBytes: 120, maxRecordBytes: 1000 }, (n) => refused.push(n))
    expect(byBytes.entries.map((e) => e.key)).toEqual(['a', 'b'])
    expect(byBytes.taken).toBe(2)
    expect(takeEntries([record('big', 500)], { batchSize: 10, batchBytes: 100, maxRecordBytes: 1000 }, (n) => refused.push(n)).entries).toHaveLength(1)
    expect(refused).toEqual([])
  })

  it('refuses a record over maxRecordBytes, reports its size, and takes the ones after it', () => {
    const refused: number[] = []
    const { entries, taken } = takeEntries([record('a', 9), record('huge', 996), record('b', 9)], { batchSize: 10, batchBytes: 10_000, maxRecordBytes: 999 }, (n) => refused.push(n))
    expect(entries.map((e) => e.key)).toEqual(['a', 'b'])
    expect(taken).toBe(3)
    expect(refused).toEqual([1000])
    expect(allEntries([record('huge', 996), record('c', 1)], 999, () => {}).map((e) => e.key)).toEqual(['c'])
  })
})
