// The calibration file `specserve eval --calibrate` writes: a file gathers fits from several
// runs, so each entry says which data set it was fitted on and when (one top-level `data`
// relabelled every earlier fit with the latest run's data set); a run that fits nothing leaves
// the file as it was, and says why.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { CalibrationFile } from '../../src/config/calibration.ts'
import { loadConfigFile } from '../../src/config/load.ts'
import { calibrate } from '../../src/eval/calibrate.ts'
import { evalMain } from '../../src/eval/cli.ts'
import { EvalInputError, readLabeledCsv } from '../../src/eval/data.ts'
import type { EvalReport } from '../../src/eval/report.ts'
import { printed } from '../console-output.ts'
import { tempDir } from '../temp-dirs.ts'
import '../starter/scripted.ts'

/** Scripted classifiers (two features, two classes): `a` and `b` alone in e1 and e2; `down` fails every request. */
function config(): { dir: string; file: string } {
  const dir = tempDir('specserve-eval-calibrate-')
  const file = join(dir, 'c.yaml')
  writeFileSync(
    file,
    `models:
  a: { kind: scripted, label: 1 }
  b: { kind: scripted, label: 0 }
  c: { kind: scripted, label: 1 }
  down: { kind: scripted, fail: boom }
ensembles:
  e1: { strategy: deadline-fallback, models: [a] }
  e2: { strategy: deadline-fallback, models: [b] }
  broken: { strategy: deadline-fallback, models: [down] }
`,
  )
  return { dir, file }
}

const data = (name: string) => readLabeledCsv(name, 'label', 'x0,x1,label\n1,2,1\n3,4,0\n5,6,1\n')
const reportOf = (dir: string): EvalReport => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as EvalReport
/** The calibration file's lock, beside it as the kernel names it (a temporary directory may be reached through a link). */
const lockIn = (dir: string): string => join(realpathSync(dir), 'c.calibration.json.lock')
/** Other runs: processes that run until the test is done. */
const others: ChildProcess[] = []
/** A lock held by another run, running (a child that waits for ever): waited for, never taken over. Its pid. */
function holdLock(dir: string): number {
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' })
  others.push(other)
  writeFileSync(lockIn(dir), JSON.stringify({ pid: other.pid, host: hostname(), since: new Date().toISOString() }))
  return other.pid!
}
const fileOf = (dir: string): CalibrationFile => JSON.parse(readFileSync(join(dir, 'c.calibration.json'), 'utf8')) as CalibrationFile

afterEach(() => {
  vi.restoreAllMocks()
  for (const other of others.splice(0)) other.kill()
})

describe('the calibration file --calibrate writes', () => {
  it('gives each model the data set and time it was fitted on, across runs on different data sets', async () => {
    const { dir, file } = config()
    const first = await calibrate(loadConfigFile(file), data('wine.csv'), ['e1'])
    expect(first.written).toBe(true)
    const second = await calibrate(loadConfigFile(file), data('cancer.csv'), ['e2'])
    expect(second.written).toBe(true)
    const written = fileOf(dir)
    expect(Object.keys(written)).toEqual(['models'])
    expect(written.models['a']).toMatchObject({ data: 'wine.csv', fitted_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown })
    expect(written.models['b']).toMatchObject({ data: 'cancer.csv' })
    expect(written.models['a']!.fitted_at! <= written.models['b']!.fitted_at!).toBe(true)
    // The file written is one the config reads.
    expect([...loadConfigFile(file).calibration.keys()].sort()).toEqual(['a', 'b'])
  })

  it("moves an older file's top-level data set and time into the entries fitted then", async () => {
    const { dir, file } = config()
    const old = { data: 'models/old.csv', fitted_at: '2026-01-01T00:00:00.000Z', models: { c: { temperature: 2, nll_before: 0.5, nll_after: 0.4, rows: 10 } } }
    writeFileSync(join(dir, 'c.calibration.json'), JSON.stringify(old))
    await calibrate(loadConfigFile(file), data('new.csv'), ['e1'])
    const written = fileOf(dir)
    expect(written.data).toBeUndefined()
    expect(written.models['c']).toEqual({ ...old.models.c, data: 'models/old.csv', fitted_at: '2026-01-01T00:00:00.000Z' })
    expect(written.models['a']).toMatchObject({ data: 'new.csv' })
  })

  it('writes nothing when nothing was fitted: no file made, an existing one left byte for byte', async () => {
    const { dir, file } = config()
    const none = await calibrate(loadConfigFile(file), data('d.csv'), ['broken'])
    expect(none).toMatchObject({ written: false, candidates: ['down'], models: {}, unanswered: { down: 3 } })
    expect(existsSync(join(dir, 'c.calibration.json'))).toBe(false)
    const before = JSON.stringify({ data: 'models/old.csv', fitted_at: '2026-01-01T00:00:00.000Z', models: { c: { temperature: 2 } } })
    writeFileSync(join(dir, 'c.calibration.json'), before)
    await calibrate(loadConfigFile(file), data('d.csv'), ['broken'])
    expect(readFileSync(join(dir, 'c.calibration.json'), 'utf8')).toBe(before)
  })

  it('says, as it writes the file, that a running server takes it on reload (its file watch sees the config only)', async () => {
    const { dir, file } = config()
    const csv = join(dir, 'd.csv')
    writeFileSync(csv, 'x0,x1,label\n1,2,1\n3,4,0\n')
    const run = await printed(() => evalMain(['-c', file, '--data', csv, '--label', 'label', '--ensembles', 'e1', '--calibrate', '--out', join(dir, 'out')]))
    expect(run.code).toBe(0)
    expect(run.out).toContain(`\nwrote ${join(dir, 'c.calibration.json')} (a running server takes it on reload: SIGHUP or POST /admin/reload)\n`)
    // The report scores the calibrated config, and says so.
    expect(reportOf(join(dir, 'out')).calibration).toEqual({ file: join(dir, 'c.calibration.json'), models: ['a'] })
  })

  it('counts one row as one row, not "1 rows"', async () => {
    const { dir, file } = config()
    const csv = join(dir, 'one.csv')
    writeFileSync(csv, 'x0,x1,label\n1,2,1\n')
    const run = await printed(() => evalMain(['-c', file, '--data', csv, '--label', 'label', '--ensembles', 'e1,broken', '--calibrate', '--out', join(dir, 'out')]))
    expect(run.code).toBe(0)
    expect(run.out).toMatch(/^calibrated a: temperature [\d.]+ \(mean NLL [\d.]+ → [\d.]+ on 1 row\)$/m)
    expect(run.out).toContain('not calibrated down: it answered not its 1 row (it failed or was over the budget)')
    expect(run.out).not.toMatch(/\b1 rows\b/)
    expect(readFileSync(join(dir, 'out', 'report.md'), 'utf8')).toContain('(1 row, label `label`)')
  })

  it('says why in one line when nothing was fitted, and scores the run all the same', async () => {
    const { dir, file } = config()
    const csv = join(dir, 'd.csv')
    writeFileSync(csv, 'x0,x1,label\n1,2,1\n3,4,0\n')
    const run = await printed(() => evalMain(['-c', file, '--data', csv, '--label', 'label', '--ensembles', 'broken', '--calibrate', '--out', join(dir, 'out')]))
    expect(run.err).toBe('')
    expect(run.code).toBe(0)
    expect(run.out).toContain('not calibrated down: it answered none of the 2 rows (each failed or was over the budget)')
    expect(run.out).toContain(`nothing calibrated: no member gave probabilities to fit (above); ${join(dir, 'c.calibration.json')} not written`)
    expect(run.out).not.toMatch(/^wrote .*calibration/m)
    expect(existsSync(join(dir, 'c.calibration.json'))).toBe(false)
    expect(reportOf(join(dir, 'out')).calibration).toBeNull()
  })

  it("keeps every run's entries when runs on one config write at once", async () => {
    const { dir, file } = config()
    // A third run holds the lock: the two below fit, then wait for it (each says so).
    holdLock(dir)
    const runs = [['e1'], ['e2']].map((ensembles) => {
      let waiting = (): void => {}
      const waits = new Promise<void>((resolve) => (waiting = resolve))
      const run = calibrate(loadConfigFile(file), data(`${ensembles[0]}.csv`), ensembles, 'temperature', { lock: { note: () => waiting() } })
      return { run, waits }
    })
    // Both are at the lock (or, had they not waited for it, done).
    await Promise.all(runs.map(({ run, waits }) => Promise.race([run, waits])))
    // The third run writes what it merged from the file as it read it before them: its `c` alone.
    writeFileSync(join(dir, 'c.calibration.json'), JSON.stringify({ models: { c: { temperature: 2, nll_before: 0.5, nll_after: 0.4, rows: 10 } } }))
    rmSync(lockIn(dir))
    await Promise.all(runs.map(({ run }) => run))
    const written = fileOf(dir)
    expect(Object.keys(written.models).sort()).toEqual(['a', 'b', 'c'])
    expect(written.models['a']).toMatchObject({ data: 'e1.csv' })
    expect(written.models['b']).toMatchObject({ data: 'e2.csv' })
    expect(existsSync(lockIn(dir))).toBe(false)
  })

  it('takes over a lock left by a run that is gone, saying so on stderr', async () => {
    const { dir, file } = config()
    const gone = spawnSync(process.execPath, ['-e', '']).pid
    writeFileSync(lockIn(dir), JSON.stringify({ pid: gone, host: hostname(), since: '2026-01-01T00:00:00.000Z' }))
    const csv = join(dir, 'd.csv')
    writeFileSync(csv, 'x0,x1,label\n1,2,1\n3,4,0\n')
    const run = await printed(() => evalMain(['-c', file, '--data', csv, '--label', 'label', '--ensembles', 'e1', '--calibrate', '--out', join(dir, 'out')]))
    expect(run.code).toBe(0)
    expect(run.err).toContain(
      `warning: took over ${lockIn(dir)}: it was left by process ${gone} on ${hostname()} since 2026-01-01T00:00:00.000Z, which is no longer running (a run that crashed or was killed)`,
    )
    expect(Object.keys(fileOf(dir).models)).toEqual(['a'])
    expect(existsSync(lockIn(dir))).toBe(false)
  })

  it("takes over a lock naming this very process from before it started (a container's pid 1 restarted, keeping its hostname)", async () => {
    const { dir, file } = config()
    const since = new Date(Date.now() - process.uptime() * 1000 - 60_000).toISOString()
    writeFileSync(lockIn(dir), JSON.stringify({ pid: process.pid, host: hostname(), since }))
    const csv = join(dir, 'd.csv')
    writeFileSync(csv, 'x0,x1,label\n1,2,1\n3,4,0\n')
    const run = await printed(() => evalMain(['-c', file, '--data', csv, '--label', 'label', '--ensembles', 'e1', '--calibrate', '--out', join(dir, 'out')]))
    expect(run.code).toBe(0)
    expect(run.err).toContain(`warning: took over ${lockIn(dir)}: it was left by process ${process.pid} on ${hostname()} since ${since}, which is no longer running (pid ${process.pid} is now a process started after the lock was taken)`)
    expect(Object.keys(fileOf(dir).models)).toEqual(['a'])
    expect(existsSync(lockIn(dir))).toBe(false)
  })

  it('refuses, naming the lock file and its holder, when the lock stays held for the whole wait; the file is left as it was', async () => {
    const { dir, file } = config()
    const holder = holdLock(dir)
    const refused = calibrate(loadConfigFile(file), data('d.csv'), ['e1'], 'temperature', { lock: { waitMs: 0 } })
    await expect(refused).rejects.toThrow(EvalInputError)
    await expect(refused).rejects.toThrow(`--calibrate: cannot write the calibration file beside ${file}: ${lockIn(dir)} is held by process ${holder} on ${hostname()} since `)
    expect(existsSync(join(dir, 'c.calibration.json'))).toBe(false)
  })
})
