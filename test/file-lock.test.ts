// The lock beside a file that several processes read, merge into and write (the calibration
// file): one holder at a time, a wait bounded in time with an error naming the lock and its
// holder, and a lock left by a process that is gone taken over. A running holder is played by a
// pid no process has, which process.kill (a spy) says runs. Fake timers: the waits are
// stepped, never slept.
import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FileLockBusy, HELD_AT_MOST_MS, LOCK_WAIT_MS, withFileLock, type LockHolder } from '../src/file-lock.ts'
import { tempDir } from './temp-dirs.ts'

/** Linux caps pids at 2^22, others lower: no process has these. The first plays a running one. */
const LIVE_PID = 2 ** 30 - 1
const NO_SUCH_PID = 2 ** 30

function fileIn(): { file: string; lock: string } {
  const file = join(tempDir('specserve-file-lock-'), 'f.json')
  return { file, lock: `${file}.lock` }
}

const holding = (lock: string, holder: Partial<LockHolder> = {}): LockHolder => {
  const full = { pid: LIVE_PID, host: hostname(), since: '2026-01-01T00:00:00.000Z', ...holder }
  writeFileSync(lock, JSON.stringify(full))
  return full
}

/** The promise's outcome, as a value: a rejection caught at once is no unhandled one while timers are stepped. */
const settled = <T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> => p.then((value) => ({ value }), (error: unknown) => ({ error }))

beforeEach(() => {
  vi.useFakeTimers()
  const kill = process.kill.bind(process)
  vi.spyOn(process, 'kill').mockImplementation((pid, signal) => (pid === LIVE_PID ? true : kill(pid, signal)))
})

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('withFileLock', () => {
  it('holds <file>.lock, saying who holds it, while the work runs, and removes it after, the work failed or not', async () => {
    const { file, lock } = fileIn()
    const seen = await withFileLock(file, () => JSON.parse(readFileSync(lock, 'utf8')) as LockHolder)
    expect(seen).toMatchObject({ pid: process.pid, host: hostname(), since: new Date().toISOString() })
    expect(existsSync(lock)).toBe(false)
    await expect(
      withFileLock(file, () => {
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(existsSync(lock)).toBe(false)
  })

  it('waits for a holder that is running, and runs the work once it lets go', async () => {
    const { file, lock } = fileIn()
    holding(lock)
    const notes: string[] = []
    const work = vi.fn(() => 'done')
    const outcome = settled(withFileLock(file, work, { note: (m) => notes.push(m) }))
    await vi.advanceTimersByTimeAsync(1000)
    expect(work).not.toHaveBeenCalled()
    expect(notes).toEqual([`waiting for ${lock}: held by process ${LIVE_PID} on ${hostname()} since 2026-01-01T00:00:00.000Z (up to 10 s)`])
    rmSync(lock)
    await vi.advanceTimersByTimeAsync(250) // the longest pause between tries
    expect(await outcome).toEqual({ value: 'done' })
    expect(notes).toHaveLength(1) // said once, not at each try
  })

  it('gives up after the wait with an error naming the lock file and its holder, leaving the lock as it was', async () => {
    const { file, lock } = fileIn()
    const holder = holding(lock)
    const work = vi.fn()
    const outcome = settled(withFileLock(file, work))
    await vi.advanceTimersByTimeAsync(LOCK_WAIT_MS - 1)
    expect(await Promise.race([outcome, Promise.resolve('pending')])).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    const { error } = await outcome
    expect(error).toBeInstanceOf(FileLockBusy)
    expect((error as FileLockBusy).message).toBe(
      `${lock} is held by process ${LIVE_PID} on ${hostname()} since 2026-01-01T00:00:00.000Z: waited 10 s for it. ` +
        'Another run is writing this file; try again when it is done, or remove the lock file if no such run is going',
    )
    expect((error as FileLockBusy).holder).toEqual(holder)
    expect(work).not.toHaveBeenCalled()
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(holder)
  })

  it('waits as long as it is told to', async () => {
    const { file, lock } = fileIn()
    holding(lock)
    const outcome = settled(withFileLock(file, () => 'done', { waitMs: 0 }))
    expect((await outcome).error).toBeInstanceOf(FileLockBusy)
  })

  it('takes over a lock whose holder on this host is gone, and says so', async () => {
    const { file, lock } = fileIn()
    holding(lock, { pid: NO_SUCH_PID })
    const notes: string[] = []
    const holder = await withFileLock(file, () => JSON.parse(readFileSync(lock, 'utf8')) as LockHolder, { note: (m) => notes.push(m) })
    expect(holder.pid).toBe(process.pid)
    expect(notes).toEqual([
      `took over ${lock}: it was left by process ${NO_SUCH_PID} on ${hostname()} since 2026-01-01T00:00:00.000Z, which is no longer running (a run that crashed or was killed)`,
    ])
    expect(existsSync(lock)).toBe(false)
  })

  it('never takes over a lock held on another host (its process cannot be asked)', async () => {
    const { file, lock } = fileIn()
    holding(lock, { pid: NO_SUCH_PID, host: 'elsewhere' })
    const remote = settled(withFileLock(file, () => 'done'))
    await vi.advanceTimersByTimeAsync(LOCK_WAIT_MS)
    expect(String((await remote).error)).toContain(`${lock} is held by process ${NO_SUCH_PID} on elsewhere since`)
  })

  it('waits for a lock that does not say who holds it (a taker between making it and writing to it), and takes it over once older than the wait', async () => {
    const { file, lock } = fileIn()
    writeFileSync(lock, '')
    const notes: string[] = []
    const fresh = settled(withFileLock(file, () => 'done', { waitMs: 1000, note: (m) => notes.push(m) }))
    await vi.advanceTimersByTimeAsync(1000)
    expect(String((await fresh).error)).toContain(`${lock} is held by an unknown holder (the lock file does not say who)`)
    // A run killed between making it and writing to it: nothing writes it again.
    const written = (Date.now() - LOCK_WAIT_MS - 1000) / 1000
    utimesSync(lock, written, written)
    expect(await withFileLock(file, () => 'done', { waitMs: 0, note: (m) => notes.push(m) })).toBe('done')
    expect(notes.slice(1)).toEqual([`took over ${lock}: it does not say who holds it and is 11 s old (a run killed as it took the lock)`])
  })

  it('lets one of two takers in at a time in this process too', async () => {
    const { file } = fileIn()
    const order: string[] = []
    let letGo = (): void => {}
    const first = withFileLock(file, async () => {
      order.push('first in')
      await new Promise<void>((resolve) => (letGo = resolve))
      order.push('first out')
    })
    const second = withFileLock(file, () => void order.push('second in'))
    await vi.advanceTimersByTimeAsync(1000)
    expect(order).toEqual(['first in'])
    letGo()
    await vi.advanceTimersByTimeAsync(250)
    await Promise.all([first, second])
    expect(order).toEqual(['first in', 'first out', 'second in'])
  })
})

describe('withFileLock, for a lock whose pid now names a process started after it was taken (the pid reused)', () => {
  /** This process's start, by Node's count (the fake clock starts at the real time). */
  const started = (): number => Date.now() - process.uptime() * 1000

  it("takes over one naming this very process, taken before it started (a container's pid 1 restarted, keeping its hostname)", async () => {
    const { file, lock } = fileIn()
    const since = new Date(started() - 60_000).toISOString()
    holding(lock, { pid: process.pid, since })
    const notes: string[] = []
    expect(await settled(withFileLock(file, () => 'done', { waitMs: 0, note: (m) => notes.push(m) }))).toEqual({ value: 'done' })
    expect(notes).toEqual([
      `took over ${lock}: it was left by process ${process.pid} on ${hostname()} since ${since}, which is no longer running (pid ${process.pid} is now a process started after the lock was taken)`,
    ])
  })

  it('takes over one whose pid runs once it is older than a lock is ever held (a pid reused within the start-time slack)', async () => {
    const { file, lock } = fileIn()
    // Taken 1 s before this process started: within the slack, so the start time cannot tell.
    const since = new Date(started() - 1000).toISOString()
    holding(lock, { pid: process.pid, since })
    expect((await settled(withFileLock(file, () => 'done', { waitMs: 0 }))).error).toBeInstanceOf(FileLockBusy)
    // Written at the fake clock's now (the real time the file got may be a moment later), then 75 s pass.
    utimesSync(lock, Date.now() / 1000, Date.now() / 1000)
    vi.setSystemTime(Date.now() + HELD_AT_MOST_MS + 15_000)
    const notes: string[] = []
    expect(await settled(withFileLock(file, () => 'done', { waitMs: 0, note: (m) => notes.push(m) }))).toEqual({ value: 'done' })
    expect(notes).toEqual([`took over ${lock}: it was left by process ${process.pid} on ${hostname()} since ${since}: it is 75 s old, and a lock is held only for one write of the file`])
  })

  it('ages a lock by the younger of its two clocks: a file server whose clock is behind does not make a live lock look old', async () => {
    const { file, lock } = fileIn()
    holding(lock, { since: new Date().toISOString() })
    const written = (Date.now() - 10 * HELD_AT_MOST_MS) / 1000
    utimesSync(lock, written, written)
    expect((await settled(withFileLock(file, () => 'done', { waitMs: 0 }))).error).toBeInstanceOf(FileLockBusy)
  })

  it('waits for one naming this process, taken since it started, by a caller it does not know (another worker thread)', async () => {
    const { file, lock } = fileIn()
    holding(lock, { pid: process.pid, since: new Date().toISOString(), token: 'another thread' })
    expect((await settled(withFileLock(file, () => 'done', { waitMs: 0 }))).error).toBeInstanceOf(FileLockBusy)
  })

  it('takes over one naming another running process, started after it was taken, where /proc says when (Linux); waits for one taken since', async () => {
    const { file, lock } = fileIn()
    // This process's parent runs, and started after 2020.
    holding(lock, { pid: process.ppid, since: '2020-01-01T00:00:00.000Z' })
    expect((await settled(withFileLock(file, () => 'done', { waitMs: 0 }))).value === 'done').toBe(existsSync('/proc/self/stat')) // elsewhere: running is live
    holding(lock, { pid: process.ppid, since: new Date().toISOString() })
    expect((await settled(withFileLock(file, () => 'done', { waitMs: 0 }))).error).toBeInstanceOf(FileLockBusy)
  })
})
