// How `--calibrate` writes the calibration file beside a config: a read-merge-write under
// `<file>.lock`, so two runs on one config at once each keep the other's entries. The other
// run is played by the test: it holds the lock and writes what it merged, and the run under
// test must read the file only after that (fake timers: the wait is stepped, never slept).
import { existsSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { calibrationPath, writeCalibration, type CalibrationFile, type ModelCalibration } from '../../src/config/calibration.ts'
import { FileLockBusy, LOCK_WAIT_MS } from '../../src/file-lock.ts'
import { tempDir } from '../temp-dirs.ts'

const entry = (temperature: number, data: string): ModelCalibration => ({ temperature, nll_before: 0.5, nll_after: 0.4, rows: 10, data, fitted_at: '2026-01-01T00:00:00.000Z' })

/** `c.yaml` in a directory of its own (the config itself is never read here), and its calibration file's lock. */
function configFile(): { file: string; calibration: string; lock: string } {
  const file = join(tempDir('specserve-calibration-write-'), 'c.yaml')
  const calibration = calibrationPath(file)
  // Beside the file as the kernel names it (a temporary directory may be reached through a link).
  return { file, calibration, lock: join(realpathSync(dirname(calibration)), 'c.calibration.json.lock') }
}

const modelsIn = (calibration: string): CalibrationFile['models'] => (JSON.parse(readFileSync(calibration, 'utf8')) as CalibrationFile).models

/** Linux caps pids at 2^22, others lower: no process has this one, which process.kill (a spy) says runs. */
const OTHER_RUN = 2 ** 30 - 1
/** Another run's lock: a running process's, so it is waited for, never taken over. */
const holdLock = (lock: string): void => writeFileSync(lock, JSON.stringify({ pid: OTHER_RUN, host: hostname(), since: new Date().toISOString() }))

beforeEach(() => {
  vi.useFakeTimers()
  const kill = process.kill.bind(process)
  vi.spyOn(process, 'kill').mockImplementation((pid, signal) => (pid === OTHER_RUN ? true : kill(pid, signal)))
})

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('writeCalibration', () => {
  it('keeps the entries another run wrote while it waited for the lock (the file is read under the lock, not before)', async () => {
    const { file, calibration, lock } = configFile()
    writeFileSync(calibration, JSON.stringify({ models: { old: entry(3, 'old.csv') } }))
    // The other run took the lock and read the file (only `old`) before this one came to write.
    holdLock(lock)
    const writing = writeCalibration(file, { a: entry(1, 'a.csv') })
    // It writes what it merged: its own `b` over what it read, so without `a`.
    writeFileSync(calibration, JSON.stringify({ models: { old: entry(3, 'old.csv'), b: entry(2, 'b.csv') } }))
    rmSync(lock)
    await vi.advanceTimersByTimeAsync(1000)
    expect(await writing).toBe(calibration)
    expect(modelsIn(calibration)).toEqual({ old: entry(3, 'old.csv'), b: entry(2, 'b.csv'), a: entry(1, 'a.csv') })
    expect(existsSync(lock)).toBe(false)
  })

  it("lets this run's entries win for the models it fitted, and keeps every other entry the file has as it writes", async () => {
    const { file, calibration } = configFile()
    writeFileSync(calibration, JSON.stringify({ models: { a: entry(9, 'stale.csv'), b: entry(2, 'b.csv') } }))
    await writeCalibration(file, { a: entry(1, 'a.csv') })
    expect(modelsIn(calibration)).toEqual({ a: entry(1, 'a.csv'), b: entry(2, 'b.csv') })
  })

  it('writes through a link, locking beside its target (a run reaching the file another way takes the same lock)', async () => {
    const { file, calibration } = configFile()
    const target = join(tempDir('specserve-calibration-target-'), 'kept.json')
    writeFileSync(target, JSON.stringify({ models: { b: entry(2, 'b.csv') } }))
    symlinkSync(target, calibration)
    holdLock(`${realpathSync(target)}.lock`)
    const outcome = writeCalibration(file, { a: entry(1, 'a.csv') }, { waitMs: 0 }).catch((err: unknown) => err)
    expect(await outcome).toBeInstanceOf(FileLockBusy)
    rmSync(`${realpathSync(target)}.lock`)
    await writeCalibration(file, { a: entry(1, 'a.csv') })
    expect(realpathSync(calibration)).toBe(realpathSync(target))
    expect(modelsIn(target)).toEqual({ b: entry(2, 'b.csv'), a: entry(1, 'a.csv') })
  })

  it('gives up after the bounded wait, naming the lock file and its holder, and writes nothing', async () => {
    const { file, calibration, lock } = configFile()
    const before = JSON.stringify({ models: { b: entry(2, 'b.csv') } })
    writeFileSync(calibration, before)
    holdLock(lock)
    const outcome = writeCalibration(file, { a: entry(1, 'a.csv') }).catch((err: unknown) => err)
    await vi.advanceTimersByTimeAsync(LOCK_WAIT_MS)
    const error = await outcome
    expect(error).toBeInstanceOf(FileLockBusy)
    expect(String(error)).toContain(`${lock} is held by process ${OTHER_RUN} on ${hostname()} since `)
    expect(readFileSync(calibration, 'utf8')).toBe(before)
  })
})
