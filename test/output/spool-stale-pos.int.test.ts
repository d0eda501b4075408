// A `.pos` that does not belong to the spool beside it (left when the spool was deleted by hand
// or by a crash inside a reset, or torn): the next spool must replay every record, not skip some.
import { existsSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeEach, expect, it } from 'vitest'
import { Spool } from '../../src/output/spool.ts'
import { tempDir } from '../temp-dirs.ts'

let file: string

beforeEach(() => {
  file = join(tempDir('specserve-spool-pos-'), 'records.spool')
})

const records = (n: number): { key: string; value: string }[] => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `rec-${i}` }) }))

/** Everything a freshly opened spool replays, and how many records it said were waiting. */
function reopen(): { waiting: number; replayed: string[]; skipped: number; ignoredPos: number | null } {
  const spool = new Spool(file, 1 << 20)
  const waiting = spool.open()
  const batch = spool.read(1000)
  spool.close()
  return { waiting, replayed: batch.entries.map((e) => (JSON.parse(e.value) as { id: string }).id), skipped: batch.skipped, ignoredPos: spool.ignoredPos }
}

it('a .pos left without its spool is deleted at open: the next spool replays from its first record', () => {
  writeFileSync(`${file}.pos`, '60')
  const spool = new Spool(file, 1 << 20)
  expect(spool.open()).toBe(0)
  expect(existsSync(`${file}.pos`)).toBe(false)
  spool.append(records(4))
  spool.close()
  expect(reopen()).toMatchObject({ waiting: 4, replayed: ['rec-0', 'rec-1', 'rec-2', 'rec-3'], skipped: 0 })
})

it('a .pos past the spool’s end, or in the middle of a line, is ignored: everything is replayed, and open() says so', () => {
  const spool = new Spool(file, 1 << 20)
  spool.open()
  spool.append(records(3))
  spool.close()
  writeFileSync(`${file}.pos`, '5') // inside the first line
  expect(reopen()).toEqual({ waiting: 3, replayed: ['rec-0', 'rec-1', 'rec-2'], skipped: 0, ignoredPos: 5 })
  writeFileSync(`${file}.pos`, '100000') // past the end: not a position of this spool
  expect(reopen()).toEqual({ waiting: 3, replayed: ['rec-0', 'rec-1', 'rec-2'], skipped: 0, ignoredPos: 100000 })
})

it('a .pos at a line start of its spool still resumes there (nothing replayed twice)', () => {
  const spool = new Spool(file, 1 << 20)
  spool.open()
  spool.append(records(3))
  const first = spool.read(1)
  spool.commit(first.end, 1)
  spool.close()
  expect(reopen()).toMatchObject({ waiting: 2, replayed: ['rec-1', 'rec-2'], skipped: 0 })
})

it('an ignored .pos is deleted: the spool growing past it cannot make it fit at the next start', () => {
  let spool = new Spool(file, 1 << 20)
  spool.open()
  spool.append(records(1))
  spool.close()
  const line = statSync(file).size // every record's line is as long: k0, rec-0
  writeFileSync(`${file}.pos`, String(2 * line)) // past the end
  spool = new Spool(file, 1 << 20)
  expect(spool.open()).toBe(1)
  expect(spool.ignoredPos).toBe(2 * line)
  spool.append(records(3).slice(1)) // the spool grows past it (the brokers still down): it would now be a line start
  spool.close()
  expect(reopen()).toMatchObject({ waiting: 3, replayed: ['rec-0', 'rec-1', 'rec-2'], skipped: 0, ignoredPos: null })
})
