// The lock when takers race: a taker that saw a stale lock, then finds at its name a live lock
// another taker made since, must leave that one alone, though it is in the inode just freed
// (ext4 gives a new file the inode number just freed, so a file's identity does not tell them
// apart; the lock's token does). The interleavings are played here, not hoped for: the other
// taker acts while this one asks whether the stale lock's process runs (process.kill), and it
// rewrites the lock in place, the surest way to the same inode. Fake timers: the waits are
// stepped, never slept.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { withFileLock } from '../src/file-lock.ts'
import { tempDir } from './temp-dirs.ts'

/** Linux caps pids at 2^22, others lower: no process has these. The first plays a running one (process.kill is asked through a spy). */
const LIVE_PID = 2 ** 30 - 1
const GONE_PID = 2 ** 30
const lockText = (pid: number, token: string): string => JSON.stringify({ pid, host: hostname(), since: new Date().toISOString(), token })

function fileIn(): { file: string; lock: string } {
  const file = join(tempDir('specserve-file-lock-races-'), 'f.json')
  return { file, lock: `${file}.lock` }
}

/** Answers process.kill(pid, 0) for the fake pids: LIVE_PID runs; GONE_PID does not, and the first time it is asked `meanwhile` runs (another taker). */
function playOthers(meanwhile: () => void = () => {}): void {
  const kill = process.kill.bind(process)
  let first = true
  vi.spyOn(process, 'kill').mockImplementation((pid, signal) => {
    if (pid === LIVE_PID) return true
    if (pid !== GONE_PID) return kill(pid, signal)
    if (first) meanwhile()
    first = false
    throw Object.assign(new Error('ESRCH: no such process, kill'), { code: 'ESRCH' })
  })
}

beforeEach(() => {
  vi.useFakeTimers()
})

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('withFileLock, when takers race', () => {
  it('leaves alone the live lock another taker made, in the same inode, after this one saw the stale one', async () => {
    const { file, lock } = fileIn()
    writeFileSync(lock, lockText(GONE_PID, 'stale'))
    // The other taker took the stale lock over and made its own, in the inode just freed.
    const theirs = lockText(LIVE_PID, 'theirs')
    playOthers(() => writeFileSync(lock, theirs))
    const notes: string[] = []
    const work = vi.fn(() => 'done')
    const outcome = withFileLock(file, work, { note: (m) => notes.push(m) })
    await vi.advanceTimersByTimeAsync(1000)
    expect(work).not.toHaveBeenCalled()
    expect(readFileSync(lock, 'utf8')).toBe(theirs)
    expect(existsSync(`${lock}.takeover`)).toBe(false)
    expect(notes).toEqual([expect.stringMatching(new RegExp(`^waiting for ${lock}: held by process ${LIVE_PID} on `))])
    writeFileSync(lock, lockText(GONE_PID, 'theirs, left')) // they crashed: it is taken over, and said so
    await vi.advanceTimersByTimeAsync(250)
    expect(await outcome).toBe('done')
    expect(notes[1]).toMatch(new RegExp(`^took over ${lock}: it was left by process ${GONE_PID} on `))
  })

  it("leaves the lock as it is after the work when it is another's now, in the inode this run's had", async () => {
    const { file, lock } = fileIn()
    const theirs = lockText(LIVE_PID, 'theirs')
    await withFileLock(file, () => writeFileSync(lock, theirs))
    expect(readFileSync(lock, 'utf8')).toBe(theirs)
  })

  it('waits, not spinning, while another taker holds <lock>.takeover, and takes the stale lock over once it is let go', async () => {
    const { file, lock } = fileIn()
    writeFileSync(lock, lockText(GONE_PID, 'stale'))
    writeFileSync(`${lock}.takeover`, lockText(LIVE_PID, 'another taker'))
    playOthers()
    const notes: string[] = []
    const work = vi.fn(() => 'done')
    const outcome = withFileLock(file, work, { note: (m) => notes.push(m) })
    await vi.advanceTimersByTimeAsync(1000)
    expect(work).not.toHaveBeenCalled()
    expect(vi.mocked(process.kill).mock.calls.length).toBeLessThan(30) // a try a pause, not a spin
    expect(notes).toEqual([])
    writeFileSync(`${lock}.takeover`, lockText(GONE_PID, 'another taker, killed in it'))
    await vi.advanceTimersByTimeAsync(250)
    expect(await outcome).toBe('done')
    expect(notes).toEqual([expect.stringMatching(new RegExp(`^took over ${lock}: it was left by process ${GONE_PID} on `))])
    expect(existsSync(`${lock}.takeover`)).toBe(false)
    expect(existsSync(lock)).toBe(false)
  })
})
