// An exclusive lock for a short read-modify-write of a file that several processes update (two
// `specserve eval --calibrate` runs on one config each merge their entries into the calibration
// file): `<file>.lock` beside it, made with O_EXCL and saying who holds it (pid, host, since).
// A second taker waits for it, with backoff, for a bounded time; a lock whose holder is gone (a
// run that crashed or was killed) is taken over, and said so. Only what must not interleave is
// held: a long computation happens before the lock is taken.
import { randomBytes } from 'node:crypto'
import { closeSync, fstatSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { errorCode } from './durable.ts'

/** How long a taker waits, by default, for a lock whose holder is running. */
export const LOCK_WAIT_MS = 10_000
/** The first pause between tries, doubled after each up to the last. */
const FIRST_PAUSE_MS = 20
const LAST_PAUSE_MS = 250

/** Who holds a lock, as its file says. */
export interface LockHolder {
  readonly pid: number
  readonly host: string
  /** When it was taken (ISO time). */
  readonly since: string
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

/** Runs `work` holding `<file>.lock`, which is always released after it (if still this run's). */
export async function withFileLock<T>(file: string, work: () => T | Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const lockFile = `${file}.lock`
  const ours = await take(lockFile, options)
  try {
    return await work()
  } finally {
    release(lockFile, ours)
  }
}

/** A file's identity: a lock renamed away or replaced is another file, whatever it says. */
interface Identity {
  readonly dev: bigint
  readonly ino: bigint
}

const same = (a: Identity, b: Identity): boolean => a.dev === b.dev && a.ino === b.ino

async function take(lockFile: string, { waitMs = LOCK_WAIT_MS, note }: FileLockOptions): Promise<Identity> {
  const deadline = Date.now() + waitMs
  let pause = FIRST_PAUSE_MS
  let told = false
  for (;;) {
    const made = create(lockFile)
    if (made) return made
    const seen = look(lockFile)
    if (seen === undefined) continue // released between the try and the look: try again at once
    if (seen.holder !== undefined && gone(seen.holder)) {
      if (takeOver(lockFile, seen.id)) note?.(`took over ${lockFile}: it was left by ${holderText(seen.holder)}, which is no longer running (a run that crashed or was killed)`)
      continue
    }
    const left = deadline - Date.now()
    if (left <= 0) throw new FileLockBusy(lockFile, seen.holder, waitMs)
    if (!told) note?.(`waiting for ${lockFile}: held by ${holderText(seen.holder)} (up to ${waitMs / 1000} s)`)
    told = true
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)))
    pause = Math.min(pause * 2, LAST_PAUSE_MS)
  }
}

/** Makes the lock file, saying who holds it; undefined when there is one already. */
function create(lockFile: string): Identity | undefined {
  let fd: number
  try {
    fd = openSync(lockFile, 'wx')
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return undefined
    throw err
  }
  try {
    const holder: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString() }
    writeSync(fd, `${JSON.stringify(holder)}\n`)
    return fstatSync(fd, { bigint: true })
  } catch (err) {
    rmSync(lockFile, { force: true }) // a lock that says nobody would hold every other run up
    throw err
  } finally {
    closeSync(fd)
  }
}

/** The lock file there now, and who it says holds it (undefined: not a holder's text, or not yet written); undefined when there is none. */
function look(lockFile: string): { id: Identity; holder: LockHolder | undefined } | undefined {
  let fd: number
  try {
    fd = openSync(lockFile, 'r')
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined
    throw err
  }
  // One open file: its identity and its text are the same lock's.
  try {
    return { id: fstatSync(fd, { bigint: true }), holder: holderOf(readFileSync(fd, 'utf8')) }
  } finally {
    closeSync(fd)
  }
}

function holderOf(text: string): LockHolder | undefined {
  try {
    const { pid, host, since } = JSON.parse(text) as Partial<LockHolder>
    return Number.isSafeInteger(pid) && pid! > 0 && typeof host === 'string' && typeof since === 'string' ? { pid: pid!, host, since } : undefined
  } catch {
    return undefined
  }
}

function holderText(holder: LockHolder | undefined): string {
  return holder === undefined ? 'an unknown holder (the lock file does not say who)' : `process ${holder.pid} on ${holder.host} since ${holder.since}`
}

/** A holder on this host whose process is not running. One on another host cannot be asked: it is waited for. */
function gone(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return false
  try {
    process.kill(holder.pid, 0)
    return false
  } catch (err) {
    return errorCode(err) !== 'EPERM' // EPERM: running, as another user
  }
}

/**
 * Removes a lock left by a process that is gone, if it is still the one `seen`: two takers that
 * both saw it stale must not both take it (the later one removing the lock the first made
 * since). The lock is renamed aside (one rename wins) and its identity checked: not the one seen,
 * it is a live lock made since, put back by a link (which never replaces a lock made meanwhile).
 * Returns whether this taker removed it.
 */
function takeOver(lockFile: string, seen: Identity): boolean {
  const aside = `${lockFile}.stale-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    renameSync(lockFile, aside)
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false // another taker moved it first
    throw err
  }
  try {
    if (same(statSync(aside, { bigint: true }), seen)) return true
    try {
      linkSync(aside, lockFile)
    } catch (err) {
      // EEXIST: a third taker made one in the moment it was aside; its holder and the one moved both write. Vanishingly rare: three runs, two of them seeing one stale lock at once.
      if (errorCode(err) !== 'EEXIST') throw err
    }
    return false
  } finally {
    rmSync(aside, { force: true })
  }
}

/** Removes the lock if it is still this run's. Best effort: a lock left behind is taken over by the next run (its holder gone by then). */
function release(lockFile: string, ours: Identity): void {
  try {
    const now = statSync(lockFile, { bigint: true, throwIfNoEntry: false })
    if (now !== undefined && same(now, ours)) rmSync(lockFile, { force: true })
  } catch {
    // the work's own outcome (its error, or its result) is what the caller needs
  }
}
