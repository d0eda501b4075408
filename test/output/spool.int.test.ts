// The spool file on its own: ordered replay across restarts, torn tails, size limit (of the
// file on disk, replayed head included), malformed lines, one owner.
import { spawnSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { BATCH_HEADER_BYTES, RECORD_FRAMING_BYTES } from '../../src/kafka/client.ts'
import { Spool, SpoolFullError } from '../../src/output/spool.ts'
import { tempDir } from '../temp-dirs.ts'

let dir: string
let file: string

beforeEach(() => {
  dir = tempDir('specserve-spool-unit-')
  file = join(dir, 'records.spool')
})

/** What this process has open of the spool's files (and /dev/full, the stand-in for a full disk). */
const openFiles = (): string[] =>
  readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`)
      } catch {
        return '' // the directory's own descriptor, closed by now
      }
    })
    .filter((target) => target.startsWith(dir) || target === '/dev/full')

/** A spool whose replayed head (two thirds of it) is worth compacting. */
function halfReplayed(): Spool {
  const spool = new Spool(file, 1 << 20)
  spool.open()
  spool.append(entries(0, 6000)) // ~300 KB
  const head = spool.read(4000)
  spool.commit(head.end, 4000)
  expect(spool.compactable).toBe(true)
  return spool
}

const entries = (from: number, n: number): { key: string | null; value: string }[] =>
  Array.from({ length: n }, (_, i) => ({ key: (from + i) % 3 ? `k${(from + i) % 3}` : null, value: JSON.stringify({ id: `r${from + i}`, text: 'tab\there\nnewline' }) }))

describe('spool', () => {
  it('a spool directory that cannot be made (a file in its place) names output.kafka.spool_dir, not only the errno', () => {
    writeFileSync(join(dir, 'afile'), '')
    expect(() => new Spool(join(dir, 'afile', 'sub', 'records.spool'), 1000).open()).toThrow(new RegExp(`^output\\.kafka\\.spool_dir: cannot make the directory ${join(dir, 'afile', 'sub')}: ENOTDIR`))
  })

  it('reads a replay batch bounded by bytes as well as by count, and at least one record however large', () => {
    const spool = new Spool(file, 1 << 20)
    spool.open()
    const all = entries(0, 10)
    spool.append(all)
    // Bounded as batch_bytes bounds a batch: the lines with Kafka's framing (a batch header, and per record).
    const lineBytes = Buffer.byteLength(`${JSON.stringify(all[0]!.key)}\t${all[0]!.value}\n`) + RECORD_FRAMING_BYTES
    const three = spool.read(100, BATCH_HEADER_BYTES + lineBytes * 3 + 1)
    expect(three.entries).toEqual(all.slice(0, 3))
    const one = spool.read(100, 1)
    expect(one.entries).toEqual(all.slice(0, 1))
    spool.commit(three.end, 3)
    expect(spool.read(2, 1 << 20).entries).toEqual(all.slice(3, 5))
    spool.close()
  })

  it('replays in append order, keeps keys, and deletes itself once everything is committed', () => {
    const spool = new Spool(file, 1 << 20)
    expect(spool.open()).toBe(0)
    spool.append(entries(0, 5))
    spool.append(entries(5, 5))
    expect(spool.records).toBe(10)
    const first = spool.read(4)
    expect(first.entries).toEqual(entries(0, 4))
    spool.commit(first.end, 4)
    const rest = spool.read(100)
    expect(rest.entries).toEqual(entries(4, 6))
    spool.commit(rest.end, 6)
    expect(spool.pending).toBe(false)
    expect(existsSync(file)).toBe(false)
    spool.close()
  })

  it('a restart resumes after what was committed, and drops a torn last line', () => {
    const before = new Spool(file, 1 << 20)
    before.open()
    before.append(entries(0, 6))
    const { end } = before.read(2)
    before.commit(end, 2)
    before.close()
    appendFileSync(file, '"k1"\t{"id":"torn') // a crash in the middle of a write

    const after = new Spool(file, 1 << 20)
    expect(after.open()).toBe(4)
    expect(after.read(100).entries).toEqual(entries(2, 4))
    expect(readFileSync(file, 'utf8').endsWith('\n')).toBe(true)
    after.close()
  })

  it('refuses a batch past its size limit without writing any of it', () => {
    const spool = new Spool(file, 300)
    spool.open()
    spool.append(entries(0, 3))
    expect(() => spool.append(entries(3, 10))).toThrow(SpoolFullError)
    expect(spool.records).toBe(3)
    expect(spool.read(100).entries).toEqual(entries(0, 3))
    spool.close()
  })

  it('appends the oldest entries that fit when asked to, and the newer ones are left out', () => {
    const line = (e: { key: string | null; value: string }) => Buffer.byteLength(`${JSON.stringify(e.key)}\t${e.value}\n`)
    const all = entries(0, 10)
    const spool = new Spool(file, all.slice(0, 6).reduce((bytes, e) => bytes + line(e), 0) + 1)
    spool.open()
    spool.append(all.slice(0, 2))
    expect(spool.append(all.slice(2), true)).toHaveLength(4)
    expect(spool.records).toBe(6)
    expect(() => spool.append(all.slice(6), true)).toThrow(SpoolFullError)
    expect(spool.read(100).entries).toEqual(all.slice(0, 6))
    spool.close()
  })

  it('keeps the file on disk within its limit while records come in as fast as they are replayed, in order, across a restart', async () => {
    const limit = 10_000
    const spool = new Spool(file, limit)
    spool.open()
    const all = entries(0, 1000)
    const lineBytes = Buffer.byteLength(`${JSON.stringify(all[1]!.key)}\t${all[1]!.value}\n`)
    let appended = 0
    // Three quarters full: the replayed head is given back once it is a quarter of the limit.
    while (spool.bytes + lineBytes * 4 <= (limit * 3) / 4) spool.append(all.slice(appended, ++appended))
    const replayed: (typeof all)[number][] = []
    let largest = 0
    for (let round = 0; round < 150; round++) {
      const batch = spool.read(2)
      replayed.push(...batch.entries)
      spool.commit(batch.end, batch.entries.length)
      if (spool.compactable) await spool.compact()
      spool.append(all.slice(appended, (appended += 2))) // never refused: the replayed head is given back
      largest = Math.max(largest, statSync(file).size)
      expect(spool.bytes).toBe(statSync(file).size) // the gauge says what is on disk
    }
    expect(largest).toBeLessThanOrEqual(limit)
    spool.close()
    const after = new Spool(file, limit)
    expect(after.open()).toBe(appended - replayed.length)
    replayed.push(...after.read(1000).entries)
    expect(replayed).toEqual(all.slice(0, appended))
    after.close()
  })

  it('compacts a large tail in the background while records are still appended, losing and reordering none', async () => {
    const spool = new Spool(file, 8 << 20)
    spool.open()
    const big = (from: number, n: number): { key: string; value: string }[] => Array.from({ length: n }, (_, i) => ({ key: 'k', value: JSON.stringify({ id: from + i, pad: 'x'.repeat(1000) }) }))
    spool.append(big(0, 5000)) // ~5 MB
    const head = spool.read(2500)
    spool.commit(head.end, 2500)
    expect(spool.compactable).toBe(true)
    const compacting = spool.compact()
    spool.append(big(5000, 100)) // lands in the old file during the copy
    await compacting
    spool.append(big(5100, 100))
    expect(spool.head).toBe(0)
    expect(statSync(file).size).toBe(spool.bytes)
    expect(spool.read(10_000).entries).toEqual(big(2500, 2700))
    spool.close()
  })

  it('a compaction on a full disk fails, leaves the spool as it was with nothing left open, and is not tried again until the spool is opened again', async () => {
    const spool = halfReplayed()
    symlinkSync('/dev/full', `${file}.compact`) // every write to it: ENOSPC
    await expect(spool.compact()).rejects.toMatchObject({ code: 'ENOSPC' })
    expect(existsSync(`${file}.compact`)).toBe(false) // the partial copy is removed
    expect(spool.compactable).toBe(false) // a full disk stays full a while: no copy of the tail at every batch
    expect(openFiles()).toEqual([file]) // the spool's own descriptor only
    const rest = spool.read(10_000)
    expect(rest.entries).toEqual(entries(4000, 2000))
    spool.close()
    expect(openFiles()).toEqual([])
    spool.open()
    expect(spool.compactable).toBe(true)
    await spool.compact()
    expect(spool.head).toBe(0)
    expect(spool.read(10_000).entries).toEqual(entries(4000, 2000))
    spool.close()
  })

  it('a compaction whose .compact file cannot be created fails without leaking a descriptor or staying "in progress"', async () => {
    const spool = halfReplayed()
    mkdirSync(`${file}.compact`) // cannot be opened as a file
    await expect(spool.compact()).rejects.toMatchObject({ code: 'EISDIR' })
    rmdirSync(`${file}.compact`)
    spool.close()
    expect(openFiles()).toEqual([])
    spool.open()
    expect(spool.compactable).toBe(true)
    await spool.compact()
    expect(spool.read(10_000).entries).toEqual(entries(4000, 2000))
    spool.close()
  })

  it('append() says where each entry ends, so a batch acknowledged in part can be committed through its last acknowledged entry', () => {
    const spool = new Spool(file, 1 << 20)
    spool.open()
    const ends = spool.append(entries(0, 4))
    expect(ends).toEqual(spool.read(4).ends)
    spool.commit(ends[1]!, 2)
    expect(spool.read(100).entries).toEqual(entries(2, 2))
    expect(spool.records).toBe(2)
    spool.close()
  })

  it('a file cut short while open is read up to its last whole line (never a read that loops for ever), the rest counted lost, and appends go on after it', () => {
    const spool = new Spool(file, 1 << 20)
    spool.open()
    const all = entries(0, 10)
    spool.append(all)
    const line = (e: { key: string | null; value: string }) => Buffer.byteLength(`${JSON.stringify(e.key)}\t${e.value}\n`)
    const threeAndAHalf = line(all[0]!) + line(all[1]!) + line(all[2]!) + Math.floor(line(all[3]!) / 2)
    truncateSync(file, threeAndAHalf) // by hand, or a failing disk
    const read = spool.read(100)
    expect(read.entries).toEqual(all.slice(0, 3))
    expect([read.lost, read.skipped, statSync(file).size]).toEqual([7, 0, read.end]) // the torn half line is gone too
    spool.commit(read.end, 3)
    expect(spool.pending).toBe(false)
    spool.append(entries(10, 2))
    expect(spool.read(100).entries).toEqual(entries(10, 2))

    // Cut to nothing, after a replay that was committed part of the way.
    const again = spool.read(100)
    spool.commit(again.ends[0]!, 1)
    truncateSync(file, 0)
    const none = spool.read(100)
    expect([none.entries, none.lost, spool.pending, spool.records]).toEqual([[], 1, false, 0])
    spool.append(entries(12, 1))
    expect(spool.read(100).entries).toEqual(entries(12, 1))
    spool.close()
  })

  it('an append after the file was cut short goes after its last whole line (no torn line glued to it, no hole), the loss counted by the next read', () => {
    for (const reopened of [false, true]) {
      const spool = new Spool(file, 1 << 20)
      spool.open()
      const all = entries(0, 4)
      spool.append(all)
      if (reopened) {
        spool.close() // opened again: the file as a restart opens it (read-write, not append-only)
        spool.open()
      }
      const first = Buffer.byteLength(`${JSON.stringify(all[0]!.key)}\t${all[0]!.value}\n`)
      truncateSync(file, first + Buffer.byteLength(`${JSON.stringify(all[1]!.key)}\t{"id"`)) // mid-record, after the tab
      spool.append(entries(4, 2))
      const read = spool.read(100)
      expect([read.entries, read.lost, read.skipped]).toEqual([[all[0], ...entries(4, 2)], 3, 0])
      expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(4) // three whole lines
      spool.commit(read.end, 3)
      // Cut twice, an append after each, before a read: each loss counted once.
      spool.append(entries(6, 2))
      truncateSync(file, statSync(file).size - 3)
      spool.append(entries(8, 1))
      truncateSync(file, statSync(file).size - 3)
      spool.append(entries(9, 1))
      const after = spool.read(100)
      expect([after.entries, after.lost]).toEqual([[...entries(6, 1), ...entries(9, 1)], 2])
      spool.commit(after.end, 2) // replayed in full: the files go, and the next round starts from none
      spool.close()
    }
  })

  it('skips a malformed line (reported once), replays the lines around it, and counts only records', () => {
    writeFileSync(file, `"k1"\t{"id":"ok1"}\n{"id":"no-tab"}\n7\t{"id":"number-key"}\n"k3"\t{"id":"ok3"}\n`)
    const spool = new Spool(file, 1 << 20)
    expect(spool.open()).toBe(4) // lines, before they are read
    const first = spool.read(100)
    expect(first).toMatchObject({ entries: [{ key: 'k1', value: '{"id":"ok1"}' }, { key: 'k3', value: '{"id":"ok3"}' }], skipped: 2 })
    expect(spool.records).toBe(2)
    expect(spool.read(100).skipped).toBe(0) // a replay that failed reads them again: not counted again
    spool.commit(first.end, first.entries.length)
    expect(spool.pending).toBe(false)
    spool.close()
  })

  it('belongs to one process at a time; a lock left by a dead process is taken over', () => {
    writeFileSync(`${file}.lock`, '1') // pid 1 is alive and not us
    expect(() => new Spool(file, 1 << 20).open()).toThrow(/in use by process 1/)
    const gone = spawnSync('true').pid
    writeFileSync(`${file}.lock`, String(gone))
    const spool = new Spool(file, 1 << 20)
    expect(() => spool.open()).not.toThrow()
    expect(readFileSync(`${file}.lock`, 'utf8')).toBe(String(process.pid))
    spool.close()
    expect(existsSync(`${file}.lock`)).toBe(false)
  })
})
