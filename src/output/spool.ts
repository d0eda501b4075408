// An append-only spool file: records that could not be published (broker down, buffer
// full, shutdown grace over) wait here in arrival order and are replayed from the head.
// Line format: JSON-encoded key (or null), a TAB, the record's JSON, a newline (JSON never
// contains a raw TAB or newline). The replay position lives in a `.pos` sidecar so a
// restart does not resend what was acknowledged; once everything is replayed both go.
// Writes are synchronous and batched: one write per batch keeps order trivially and
// survives a process crash once the call returns (the page cache survives; power loss is
// out of scope). `spool_max_bytes` bounds the file itself, replayed head included: as the
// replay goes on, compact() copies the unreplayed tail to a new file in the background
// (compaction.ts), so the space of replayed records comes back without waiting for the
// spool to empty.
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { mkdirKeyed } from '../config/paths.ts'
import { copyTail, worthCompacting } from './compaction.ts'
import { parseLine, scanLines, takeLock } from './spool-file.ts'
import { BATCH_HEADER_BYTES, RECORD_FRAMING_BYTES } from '../kafka/client.ts'

export interface SpoolEntry {
  readonly key: string | null
  readonly value: string
}

export class SpoolFullError extends Error {
  constructor(file: string, max: number) {
    super(`spool ${file} is at its limit of ${max} bytes`)
    this.name = 'SpoolFullError'
  }
}

/** A replay batch: its entries, where each ends in the file, where the batch ends, and malformed lines met for the first time. */
export interface ReplayBatch {
  readonly entries: SpoolEntry[]
  readonly ends: number[]
  readonly end: number
  /** Lines that are not `key TAB value` (corruption, a hand edit, a torn `.pos`): skipped, reported once. */
  readonly skipped: number
  /** Records gone because the file ended before what was written (cut short under the gateway: by hand, a failing disk). */
  readonly lost: number
}

export class Spool {
  readonly file: string
  private readonly maxBytes: number
  private fd: number | null = null
  /** Bytes written so far (the file's size) and bytes already replayed. */
  private size = 0
  private pos = 0
  private unreplayed = 0
  /** Records found lost (the file cut short) by an append, reported by the next read. */
  private lost = 0
  private locked = false
  /** Malformed lines before this offset were reported already (a batch that failed is read again). */
  private skippedTo = 0
  private compacting = false
  /** A compaction failed (disk full, say): none is tried again until the spool empties or is opened again. */
  private compactionOff = false
  /** The `.pos` open() found and ignored (past the file's end, or not at a line start): replay started at the head. */
  ignoredPos: number | null = null

  constructor(file: string, maxBytes: number) {
    this.file = file
    this.maxBytes = maxBytes
  }

  /** Takes the lock and picks up what a previous run left. Returns how many records wait. */
  open(): number {
    mkdirKeyed(dirname(this.file), 'output.kafka.spool_dir')
    takeLock(this.file)
    this.locked = true
    this.compactionOff = false
    rmSync(`${this.file}.compact`, { force: true }) // a compaction a crash cut short: the spool itself is whole
    this.ignoredPos = null
    if (!existsSync(this.file)) {
      // A `.pos` without its spool (deleted by hand to drop a backlog) would skip the head of the next one.
      rmSync(`${this.file}.pos`, { force: true })
      return 0
    }
    const fd = openSync(this.file, 'r+')
    this.fd = fd
    const size = fstatSync(fd).size
    this.pos = this.readPos(fd, size)
    // A crash can tear the last line; everything up to the last newline is whole.
    const { whole, linesAfterPos } = scanLines(fd, size, this.pos)
    ftruncateSync(fd, whole)
    this.size = whole
    this.unreplayed = linesAfterPos
    if (this.pos >= this.size) this.reset()
    return this.unreplayed
  }

  get pending(): boolean {
    return this.pos < this.size
  }

  get records(): number {
    return this.unreplayed
  }

  /** The spool file's size on disk, replayed head included (what spool_max_bytes bounds). */
  get bytes(): number {
    return this.size
  }

  get head(): number {
    return this.pos
  }

  /**
   * Appends in order, in one write, and returns where each entry ends in the file. Past the
   * size limit: with `fitting`, the oldest entries that fit are appended and fewer ends come
   * back (the rest are the caller's); without it, or when not even the first fits, throws
   * SpoolFullError. An I/O error throws too. Nothing is written when it throws.
   */
  append(entries: readonly SpoolEntry[], fitting = false): number[] {
    const ends: number[] = []
    if (entries.length === 0) return ends
    this.lost = this.takeLost() // where the file really ends, not where it was cut from: reported by the next read (takeLost adds what was held)
    let text = ''
    let end = this.size
    for (const e of entries) {
      const line = `${JSON.stringify(e.key)}\t${e.value}\n`
      const next = end + Buffer.byteLength(line)
      if (next > this.maxBytes) {
        if (!fitting || ends.length === 0) throw new SpoolFullError(this.file, this.maxBytes)
        break
      }
      text += line
      ends.push((end = next))
    }
    const data = Buffer.from(text)
    this.fd ??= openSync(this.file, 'a+')
    let written = 0
    try {
      while (written < data.length) written += writeSync(this.fd, data, written, data.length - written, this.size + written)
    } catch (err) {
      // Never leave half a batch behind: the next append would follow a torn line.
      if (written > 0) ftruncateSync(this.fd, this.size)
      throw err
    }
    this.size += data.length
    this.unreplayed += ends.length
    return ends
  }

  /** Up to `max` records and about `maxBytes` (at least one record) from the replay position, and the offset just past them. */
  read(max: number, maxBytes = Infinity): ReplayBatch {
    const entries: SpoolEntry[] = []
    const ends: number[] = []
    let skipped = 0
    const lost = this.takeLost()
    if (this.fd === null || !this.pending) return { entries, ends, end: this.pos, skipped, lost }
    let at = this.pos
    let chunk = 256 * 1024
    let full = false
    while (!full && entries.length < max && at < this.size) {
      const buf = Buffer.allocUnsafe(Math.min(chunk, this.size - at))
      const n = readSync(this.fd, buf, 0, buf.length, at)
      let start = 0
      for (let nl = buf.indexOf(10, 0); nl !== -1 && nl < n && entries.length < max; nl = buf.indexOf(10, start)) {
        // The lines' bytes (a little over their keys and values) with Kafka's framing, as batch_bytes counts a batch.
        if (entries.length > 0 && at + nl - this.pos + BATCH_HEADER_BYTES + (entries.length + 1) * RECORD_FRAMING_BYTES > maxBytes) {
          full = true
          break
        }
        const entry = parseLine(buf.toString('utf8', start, nl))
        if (entry) {
          entries.push(entry)
          ends.push(at + nl + 1)
        } else if (at + start >= this.skippedTo) {
          // Never replayable: a line that stopped every start would stop every record behind it.
          skipped++
          this.unreplayed = Math.max(0, this.unreplayed - 1)
          this.skippedTo = at + nl + 1
        }
        start = nl + 1
      }
      if (n < buf.length) {
        // Cut short since this read began (the check above saw it whole): the next read recovers. Never a loop that reads nothing.
        at += start
        break
      }
      if (start === 0) chunk *= 4 // one line longer than the chunk: read more at once
      at += start
    }
    return { entries, ends, end: at, skipped, lost }
  }

  /**
   * Records gone since the last call because the file was cut short under the spool (by hand,
   * a failing disk): what is left whole stays, the spool ends after its last whole line (so
   * appends follow a whole line, with no hole before them), and the records written past it
   * are counted lost. Checked before every read and append: one fstat each.
   */
  private takeLost(): number {
    let lost = this.lost
    this.lost = 0
    if (this.fd === null) return lost
    const actual = fstatSync(this.fd).size
    if (actual >= this.size) return lost
    if (actual <= this.pos) {
      lost += this.unreplayed
      this.reset()
      return lost
    }
    const { whole, linesAfterPos } = scanLines(this.fd, actual, this.pos, this.pos)
    ftruncateSync(this.fd, whole)
    lost += Math.max(0, this.unreplayed - linesAfterPos)
    this.unreplayed = Math.min(this.unreplayed, linesAfterPos)
    this.size = whole
    if (this.pos >= this.size) this.reset()
    return lost
  }

  /** Marks everything before `end` as published (`count` records, malformed lines aside); deletes the files once all is. */
  commit(end: number, count: number): void {
    if (end <= this.pos) return
    this.pos = end
    this.unreplayed = Math.max(0, this.unreplayed - count)
    if (this.pos >= this.size) this.reset()
    else writeFileSync(`${this.file}.pos`, String(this.pos))
  }

  /** Worth compacting now (see worthCompacting), and no compaction running or failed. */
  get compactable(): boolean {
    return !this.compacting && !this.compactionOff && this.fd !== null && worthCompacting(this.pos, this.size, this.maxBytes)
  }

  /**
   * Copies the unreplayed tail to a new file and puts it in place of the spool, so the disk
   * gives back the replayed head. Appends go on meanwhile. Replay must not read or commit
   * while this runs (the sink's one pump does both). Throws the I/O error of a copy that
   * failed: the spool is as it was, and compaction is off until it empties or is opened again
   * (a disk that is full stays full for a while: no copy of the whole tail at every batch).
   */
  async compact(): Promise<void> {
    if (!this.compactable) return
    this.compacting = true
    const from = this.pos
    try {
      await copyTail(this.file, from, () => (this.fd === null ? null : this.size), (copy, tmp) => this.install(copy, tmp, from))
    } catch (err) {
      this.compactionOff = true
      throw err
    } finally {
      this.compacting = false
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
    if (this.size > 0 && this.pos > 0 && this.pos < this.size) writeFileSync(`${this.file}.pos`, String(this.pos))
    if (this.locked) rmSync(`${this.file}.lock`, { force: true })
    this.locked = false
  }

  /** Puts a compacted copy (what the spool held from `from` on) in its place; false if a commit ran meanwhile (not by the sink). */
  private install(copy: number, tmp: string, from: number): boolean {
    if (this.pos !== from || this.fd === null) return false
    rmSync(`${this.file}.pos`, { force: true }) // before the rename: a crash in between replays again, never skips
    renameSync(tmp, this.file)
    closeSync(this.fd)
    this.fd = copy
    this.size -= from
    this.pos = 0
    this.skippedTo = Math.max(0, this.skippedTo - from)
    return true
  }

  private reset(): void {
    this.compactionOff = false
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
    // `.pos` first: a crash in between leaves a spool replayed again, never a `.pos` that skips part of the next one.
    rmSync(`${this.file}.pos`, { force: true })
    rmSync(this.file, { force: true })
    this.size = 0
    this.pos = 0
    this.unreplayed = 0
    this.skippedTo = 0
  }

  /** The `.pos`; one where no replay can have stopped (past the end, not at a line start: another spool's) is ignored: replaying again beats skipping. */
  private readPos(fd: number, size: number): number {
    let n: number
    try {
      n = Number(readFileSync(`${this.file}.pos`, 'utf8'))
    } catch {
      return 0
    }
    if (!Number.isInteger(n) || n <= 0) return 0
    const before = Buffer.alloc(1)
    if (n <= size && readSync(fd, before, 0, 1, n - 1) === 1 && before[0] === 10) return n
    this.ignoredPos = n
    rmSync(`${this.file}.pos`, { force: true }) // left there, a spool grown past it could make it fit
    return 0
  }
}
