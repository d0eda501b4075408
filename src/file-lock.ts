// An exclusive lock for a short read-modify-write of a file that several processes update (two
// `specserve eval --calibrate` runs on one config each merge their entries into the calibration
// file): `<file>.lock` beside it, made with O_EXCL and saying who holds it (pid, host, since)
// and a random token, one per taking, that tells this lock from any other made at its name.
// A second taker waits for it, with backoff, for a bounded time; a lock whose holder is gone (a
// run that crashed or was killed, or one whose pid now names a process started after it) is
// taken over, and said so. Only what must not interleave is held: a long computation happens
// before the lock is taken.
import { randomBytes } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { errorCode } from './durable.ts'
import { processStart } from './process-start.ts'

/** How long a taker waits, by default, for a lock whose holder is running. */
export const LOCK_WAIT_MS = 10_000
/** The first pause between tries, doubled after each up to the last. */
const FIRST_PAUSE_MS = 20
const LAST_PAUSE_MS = 250
/**
 * A lock taken less than this before its pid's process started is still taken for that
 * process's: /proc's boot time is whole seconds, and the wall clock may be stepped a little.
 * Such a lock, left that close to a restart of its pid, is waited for until HELD_AT_MOST_MS.
 */
const START_SLACK_MS = 2_000
/**
 * A lock is held across one read-merge-write of a small file (milliseconds): one on this host
 * older than this is left, whatever process its pid names now (a pid reused within
 * START_SLACK_MS of the lock, where the start time cannot tell).
 */
export const HELD_AT_MOST_MS = 60_000

/** Who holds a lock, as its file says. */
export interface LockHolder {
  readonly pid: number
  readonly host: string
  /** When it was taken (ISO time). */
  readonly since: string
  /** Random, one per taking (absent in a lock of an older version): a lock made again at the name, perhaps in the inode just freed, or another caller's in this process, says another. */
  readonly token?: string
}

export interface FileLockOptions {
  /** How long to wait for a holder that is running (LOCK_WAIT_MS by default). */
  readonly waitMs?: number
  /** Told once when the lock is held and this waits, and when a lock left by a process that is gone is taken over. */
  readonly note?: (message: string) => void
}

/** The lock stayed held by a running process (or one on another host, or one whose file says nobody) for the whole wait. */
export class FileLockBusy extends Error {
  readonly lockFile: string
  readonly holder: LockHolder | undefined

  constructor(lockFile: string, holder: LockHolder | undefined, waitedMs: number) {
    super(
      `${lockFile} is held by ${holderText(holder)}: waited ${waitedMs / 1000} s for it. ` +
        'Another run is writing this file; try again when it is done, or remove the lock file if no such run is going',
    )
    this.name = 'FileLockBusy'
    this.lockFile = lockFile
    this.holder = holder
  }
}

/** The tokens of the locks held through this module now: a lock naming this process and one of them is live, whatever the clock says. */
const held = new Set<string>()

/** Runs `work` holding `<file>.lock`, which is always released after it (if still this run's). */
export async function withFileLock<T>(file: string, work: () => T | Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const lockFile = `${file}.lock`
  const token = await take(lockFile, options)
  try {
    return await work()
  } finally {
    release(lockFile, token)
  }
}

/**
 * A lock file as read. Its text (with its token) tells it from a lock made since at its name;
 * the file's identity and mtime too, for a lock of an older version or one that says nothing
 * (a lock made since in the inode just freed has another mtime).
 */
interface Seen {
  readonly text: string
  readonly holder: LockHolder | undefined
  readonly dev: bigint
  readonly ino: bigint
  readonly mtimeNs: bigint
}

const same = (a: Seen, b: Seen): boolean => a.text === b.text && a.dev === b.dev && a.ino === b.ino && a.mtimeNs === b.mtimeNs

async function take(lockFile: string, { waitMs = LOCK_WAIT_MS, note }: FileLockOptions): Promise<string> {
  const deadline = Date.now() + waitMs
  let pause = FIRST_PAUSE_MS
  let told = false
  for (;;) {
    const token = create(lockFile)
    if (token !== undefined) return token
    const seen = look(lockFile)
    if (seen === undefined) continue // released between the try and the look: try again at once
    const stale = staleWhy(seen)
    if (stale !== undefined) {
      const outcome = takeOver(lockFile, seen)
      if (outcome === 'removed') note?.(`took over ${lockFile}: ${stale}`)
      if (outcome !== 'busy') continue // try again at once: it is gone, or another's now
    }
    const left = deadline - Date.now()
    if (left <= 0) throw new FileLockBusy(lockFile, seen.holder, waitMs)
    if (!told && stale === undefined) {
      note?.(`waiting for ${lockFile}: held by ${holderText(seen.holder)} (up to ${waitMs / 1000} s)`)
      told = true
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)))
    pause = Math.min(pause * 2, LAST_PAUSE_MS)
  }
}

/** Makes the lock file, saying who holds it; its token, or undefined when there is one already. */
function create(lockFile: string): string | undefined {
  let fd: number
  try {
    fd = openSync(lockFile, 'wx')
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return undefined
    throw err
  }
  try {
    const holder: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), token: randomBytes(16).toString('hex') }
    writeSync(fd, `${JSON.stringify(holder)}\n`)
    held.add(holder.token!)
    return holder.token
  } catch (err) {
    rmSync(lockFile, { force: true }) // a lock that says nobody would hold every other run up
    throw err
  } finally {
    closeSync(fd)
  }
}

/** The lock file at `path` now (undefined: none), and who it says holds it (undefined: not a holder's text, or not yet written). */
function look(path: string): Seen | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined
    throw err
  }
  // One open file: its identity and its text are the same lock's.
  try {
    const { dev, ino, mtimeNs } = fstatSync(fd, { bigint: true })
    const text = readFileSync(fd, 'utf8')
    return { text, holder: holderOf(text), dev, ino, mtimeNs }
  } finally {
    closeSync(fd)
  }
}

function holderOf(text: string): LockHolder | undefined {
  try {
    const { pid, host, since, token } = JSON.parse(text) as Partial<LockHolder>
    if (!Number.isSafeInteger(pid) || pid! <= 0 || typeof host !== 'string' || typeof since !== 'string') return undefined
    return typeof token === 'string' ? { pid: pid!, host, since, token } : { pid: pid!, host, since }
  } catch {
    return undefined
  }
}

function holderText(holder: LockHolder | undefined): string {
  return holder === undefined ? 'an unknown holder (the lock file does not say who)' : `process ${holder.pid} on ${holder.host} since ${holder.since}`
}

/**
 * Why a lock is left by a holder that is gone (to be taken over), or undefined: its holder runs,
 * or cannot be asked (on another host: it is waited for). One that does not say who holds it
 * (a run killed between making it and writing to it) is gone once it is older than the wait.
 */
function staleWhy(seen: Seen): string | undefined {
  const { holder } = seen
  const writtenMs = Number(seen.mtimeNs / 1_000_000n)
  if (holder === undefined) {
    const age = Date.now() - writtenMs
    return age > LOCK_WAIT_MS ? `it does not say who holds it and is ${Math.round(age / 1000)} s old (a run killed as it took the lock)` : undefined
  }
  if (holder.host !== hostname()) return undefined
  const left = `it was left by ${holderText(holder)}, which is no longer running`
  if (holder.pid === process.pid) {
    if (holder.token !== undefined && held.has(holder.token)) return undefined // another caller's, in this process
  } else if (!running(holder.pid)) {
    return `${left} (a run that crashed or was killed)`
  }
  const since = Date.parse(holder.since)
  const takenMs = Number.isNaN(since) ? writtenMs : since
  // Aged by the younger of its two clocks: `since` is this host's, the mtime a file server's
  // (one whose clock is behind would make every live lock look old).
  const age = Date.now() - Math.max(takenMs, writtenMs)
  if (age > HELD_AT_MOST_MS) return `it was left by ${holderText(holder)}: it is ${Math.round(age / 1000)} s old, and a lock is held only for one write of the file`
  // Its pid runs: the holder, unless that process started after the lock was taken (this very
  // process, or another, now has a pid the holder had before a restart or a reboot).
  const started = processStart(holder.pid)
  return started !== undefined && started - takenMs > START_SLACK_MS ? `${left} (pid ${holder.pid} is now a process started after the lock was taken)` : undefined
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return errorCode(err) === 'EPERM' // running, as another user
  }
}

/**
 * Removes a lock left by a process that is gone, if it is still the one `seen`: two takers that
 * both saw it stale must not both take it (the later one removing the lock the first made
 * since, perhaps in the inode just freed). So the look again and the removal are made holding
 * `<lock>.takeover`, a guard taken as the lock is (O_EXCL, saying who), for the microseconds
 * they last: a lock changes at its name only when removed, and only its holder, or a taker
 * holding the guard, removes one. (Moving the lock aside to check it, and back when it was a
 * live one, left a moment with no lock at the name, in which a third taker made one.)
 * 'changed': it is gone, or another's now; 'busy': another taker holds the guard.
 */
function takeOver(lockFile: string, seen: Seen): 'removed' | 'changed' | 'busy' {
  const guard = `${lockFile}.takeover`
  const token = create(guard)
  if (token === undefined) {
    const other = look(guard)
    if (other === undefined) return 'changed'
    if (staleWhy(other) === undefined) return 'busy'
    // Its taker was killed in those microseconds: it is removed as a stale lock would be,
    // with no guard of its own (two takers doing so at once, the later one removing the guard
    // the first made since, both would hold it: a window of microseconds after a rare crash).
    removeIfSame(guard, other)
    return 'changed'
  }
  try {
    return removeIfSame(lockFile, seen) ? 'removed' : 'changed'
  } finally {
    release(guard, token)
  }
}

/** Removes the lock at `path` if it is the one `seen`. */
function removeIfSame(path: string, seen: Seen): boolean {
  const now = look(path)
  if (now === undefined || !same(now, seen)) return false
  rmSync(path, { force: true })
  return true
}

/** Removes the lock if it is still this run's (its token). Best effort: a lock left behind is taken over by the next run (its holder gone by then). */
function release(lockFile: string, token: string): void {
  held.delete(token)
  try {
    if (look(lockFile)?.holder?.token === token) rmSync(lockFile, { force: true })
  } catch {
    // the work's own outcome (its error, or its result) is what the caller needs
  }
}
