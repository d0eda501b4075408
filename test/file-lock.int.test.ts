// The lock across processes: four of them meet at a stale lock (its holder gone) at once, round
// after round, and each marks itself inside with a file made with O_EXCL: one takes the stale
// lock over each round, and never do two hold the lock together (with the inode of a lock just
// removed reused at once, a taker that had seen the stale lock removed the live lock made since).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { root } from './helpers.ts'
import { tempDir } from './temp-dirs.ts'

const TAKERS = 4
const ROUNDS = 20

/**
 * One taker: taker 0 leaves a stale lock for each round, once every taker is done with the one
 * before, and names the moment they all start; each then spins to it and takes the lock.
 */
const taker = `
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
const { withFileLock } = await import(process.env.FILE_LOCK)
const [dir, me, takers, rounds] = process.argv.slice(1).map((a, i) => (i === 0 ? a : Number(a)))
const file = join(dir, 'f.json')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
let overlaps = 0
let took = 0
for (let round = 0; round < rounds; round++) {
  if (me === 0) {
    for (let t = 0; round > 0 && t < takers; t++) while (!existsSync(join(dir, 'done-' + (round - 1) + '-' + t))) await sleep(1)
    writeFileSync(file + '.lock', JSON.stringify({ pid: 2 ** 30, host: hostname(), since: new Date().toISOString() }))
    writeFileSync(join(dir, 'next'), String(Date.now() + 20))
    renameSync(join(dir, 'next'), join(dir, 'go-' + round))
  }
  while (!existsSync(join(dir, 'go-' + round))) await sleep(1)
  const at = Number(readFileSync(join(dir, 'go-' + round), 'utf8'))
  while (Date.now() < at); // all four at the stale lock at once
  await withFileLock(file, async () => {
    try {
      closeSync(openSync(file + '.inside', 'wx'))
    } catch {
      overlaps++
    }
    await sleep(2)
    rmSync(file + '.inside', { force: true })
  }, { note: (m) => { if (m.startsWith('took over')) took++ } })
  writeFileSync(join(dir, 'done-' + round + '-' + me), '')
}
console.log(JSON.stringify({ overlaps, took }))
`

async function runTaker(dir: string, me: number): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', taker, dir, String(me), String(TAKERS), String(ROUNDS)], {
    env: { ...process.env, FILE_LOCK: pathToFileURL(join(root, 'src', 'file-lock.ts')).href },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr.on('data', (b: Buffer) => (err += b.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, out, err }
}

describe('withFileLock across processes', () => {
  it('lets exactly one of four takers meeting at a stale lock take it over, and one in at a time, round after round', async () => {
    const dir = tempDir('specserve-file-lock-int-')
    const runs = await Promise.all(Array.from({ length: TAKERS }, (_, me) => runTaker(dir, me)))
    for (const run of runs) expect(run).toMatchObject({ code: 0, err: '' })
    const counts = runs.map((run) => JSON.parse(run.out) as { overlaps: number; took: number })
    const sum = (key: 'overlaps' | 'took'): number => counts.reduce((total, c) => total + c[key], 0)
    expect({ overlaps: sum('overlaps'), took: sum('took') }).toEqual({ overlaps: 0, took: ROUNDS })
  })
})
