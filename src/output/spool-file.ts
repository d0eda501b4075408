// The spool file's lines and its lock: a line as append() writes it, the whole lines of a
// file a crash may have torn, and the lock file that keeps a spool to one process.
import { readFileSync, readSync, rmSync, writeFileSync } from 'node:fs'
import type { SpoolEntry } from './spool.ts'

/** One process per spool file: two writers would interleave and replay each other's records. */
export function takeLock(file: string): void {
  const lockFile = `${file}.lock`
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx' })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const owner = Number(readFileSync(lockFile, 'utf8'))
    if (owner && owner !== process.pid && alive(owner)) {
      throw new Error(`spool ${file} is in use by process ${owner} (give each gateway its own spool_dir)`)
    }
    rmSync(lockFile, { force: true }) // left by a process that is gone
  }
  throw new Error(`cannot lock spool ${file}`)
}

/** A line as append() writes it (`key JSON`, TAB, value), or null for anything else. */
export function parseLine(line: string): SpoolEntry | null {
  const tab = line.indexOf('\t')
  if (tab <= 0) return null
  try {
    const key: unknown = JSON.parse(line.slice(0, tab))
    return key === null || typeof key === 'string' ? { key, value: line.slice(tab + 1) } : null
  } catch {
    return null
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

/**
 * Scans the file in chunks from `start` (0, or a line start): the offset just past its last
 * newline (`start` if none follows), and the lines that start at or after `from`.
 */
export function scanLines(fd: number, size: number, from: number, start = 0): { whole: number; linesAfterPos: number } {
  const buf = Buffer.allocUnsafe(1024 * 1024)
  let whole = start
  let lines = 0
  for (let at = start; at < size; ) {
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
