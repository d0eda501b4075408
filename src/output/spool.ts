// An append-only spool file: records that could not be published (broker down, buffer
// full, shutdown grace over) wait here in arrival order and are replayed from the head.
// Line format: JSON-encoded key (or null), a TAB, the record's JSON, a newline (JSON never
// contains a raw TAB or newline). The replay position lives in a `.pos` sidecar so a
// restart does not resend what was acknowledged; once everything is replayed both go.
// Writes are synchronous and batched: one write per batch keeps order trivially and
// survives a process crash once the call returns (the page cache survives; power loss is
// out of scope).
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

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

export class Spool {
  readonly file: string
  private readonly maxBytes: number
  private fd: number | null = null
  /** Bytes written so far (the file's size) and bytes already replayed. */
  private size = 0
  private pos = 0
  private unreplayed = 0
  private locked = false

  constructor(file: string, maxBytes: number) {
    this.file = file
    this.maxBytes = maxBytes
  }

  /** Takes the lock and picks up what a previous run left. Returns how many records wait. */
  open(): number {
    mkdirSync(dirname(this.file), { recursive: true })
    this.lock()
    if (!existsSync(this.file)) return 0
    const fd = openSync(this.file, 'r+')
    this.fd = fd
    this.pos = this.readPos()
    // A crash can tear the last line; everything up to the last newline is whole.
    const { whole, linesAfterPos } = scanLines(fd, fstatSync(fd).size, this.pos)
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

  get bytes(): number {
    return this.size - this.pos
  }

  /** The byte offset where the next append lands (used to skip a batch acknowledged after it was spooled). */
  get end(): number {
    return this.size
  }

  get head(): number {
    return this.pos
  }

  /** Appends in order, in one write. Throws SpoolFullError or the I/O error; nothing is written then. */
  append(entries: readonly SpoolEntry[]): void {
    if (entries.length === 0) return
    let text = ''
    for (const e of entries) text += `${JSON.stringify(e.key)}\t${e.value}\n`
    const data = Buffer.from(text)
    if (this.size - this.pos + data.length > this.maxBytes) throw new SpoolFullError(this.file, this.maxBytes)
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
    this.unreplayed += entries.length
  }

  /** Up to `max` records and about `maxBytes` (at least one record) from the replay position, and the offset just past them. */
  read(max: number, maxBytes = Infinity): { entries: SpoolEntry[]; end: number } {
    const entries: SpoolEntry[] = []
    if (this.fd === null || !this.pending) return { entries, end: this.pos }
    let at = this.pos
    let chunk = 256 * 1024
    let full = false
    while (!full && entries.length < max && at < this.size) {
      const buf = Buffer.allocUnsafe(Math.min(chunk, this.size - at))
      const n = readSync(this.fd, buf, 0, buf.length, at)
      let start = 0
      for (let nl = buf.indexOf(10, 0); nl !== -1 && nl < n && entries.length < max; nl = buf.indexOf(10, start)) {
        if (entries.length > 0 && at + nl - this.pos > maxBytes) {
          full = true
          break
        }
        const line = buf.toString('utf8', start, nl)
        const tab = line.indexOf('\t')
        entries.push({ key: JSON.parse(line.slice(0, tab)) as string | null, value: line.slice(tab + 1) })
        start = nl + 1
      }
      if (start === 0) chunk *= 4 // one line longer than the chunk: read more at once
      at += start
    }
    return { entries, end: at }
  }

  /** Marks everything before `end` as published (`count` records); deletes the files once all is. */
  commit(end: number, count: number): void {
    if (end <= this.pos) return
    this.pos = end
    this.unreplayed = Math.max(0, this.unreplayed - count)
    if (this.pos >= this.size) this.reset()
    else writeFileSync(`${this.file}.pos`, String(this.pos))
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
    if (this.size > 0 && this.pos > 0 && this.pos < this.size) writeFileSync(`${this.file}.pos`, String(this.pos))
    if (this.locked) rmSync(`${this.file}.lock`, { force: true })
    this.locked = false
  }

  private reset(): void {
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
    rmSync(this.file, { force: true })
    rmSync(`${this.file}.pos`, { force: true })
    this.size = 0
    this.pos = 0
    this.unreplayed = 0
  }

  private readPos(): number {
    try {
      const n = Number(readFileSync(`${this.file}.pos`, 'utf8'))
      return Number.isInteger(n) && n > 0 ? n : 0
    } catch {
      return 0
    }
  }

  /** One process per spool file: two writers would interleave and replay each other's records. */
  private lock(): void {
    const lockFile = `${this.file}.lock`
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(lockFile, String(process.pid), { flag: 'wx' })
        this.locked = true
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const owner = Number(readFileSync(lockFile, 'utf8'))
      if (owner && owner !== process.pid && alive(owner)) {
        throw new Error(`spool ${this.file} is in use by process ${owner} (give each gateway its own spool_dir)`)
      }
      rmSync(lockFile, { force: true }) // left by a process that is gone
    }
    throw new Error(`cannot lock spool ${this.file}`)
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Scans the file in chunks: the offset just past its last newline, and the lines that start at or after `from`. */
function scanLines(fd: number, size: number, from: number): { whole: number; linesAfterPos: number } {
  const buf = Buffer.allocUnsafe(1024 * 1024)
  let whole = 0
  let lines = 0
  for (let at = 0; at < size; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - at), at)
    if (n === 0) break
    for (let i = buf.indexOf(10); i !== -1 && i < n; i = buf.indexOf(10, i + 1)) {
      if (at + i >= from) lines++
      whole = at + i + 1
    }
    at += n
  }
  return { whole, linesAfterPos: lines }
}
