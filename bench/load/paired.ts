// Paired sequential load (a child process of the bench): one request at a time, the N
// targets taking turns in short blocks (`block` requests to A, then to B, ..., the
// starting target rotating), each over its own keep-alive connection. Every target sees
// the same stretch of the run, so drift on a shared box (another tenant, a peer's
// garbage collector) lands on all of them alike and their difference is the path's own
// cost; within a block requests go back to back, as on a busy server. Usage:
// node paired.ts '<PairedSpec JSON>'; prints one JSON line: { runs: LoadResult[] }.
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import { Samples } from '../lib/stats.ts'
import type { LoadResult, PairedSpec } from '../lib/types.ts'

const spec = JSON.parse(process.argv[2] ?? '{}') as PairedSpec

const targets = spec.targets.map((t) => {
  const url = new URL(t.url)
  return {
    path: url.pathname,
    body: t.body,
    pool: new Pool(url.origin, { connections: 1, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 }),
    headers: { 'content-type': 'application/json', ...t.headers },
  }
})

class Tally {
  readonly latency = new Samples()
  readonly errorLatency = new Samples()
  readonly statuses: Record<string, number> = {}
  errors = 0
}

async function once(target: (typeof targets)[number], tally: Tally): Promise<void> {
  const start = performance.now()
  try {
    const res = await target.pool.request({ path: target.path, method: 'POST', headers: target.headers, body: target.body })
    await res.body.dump()
    const ms = performance.now() - start
    tally.statuses[res.statusCode] = (tally.statuses[res.statusCode] ?? 0) + 1
    if (res.statusCode >= 200 && res.statusCode < 300) tally.latency.push(ms)
    else tally.errorLatency.push(ms)
  } catch {
    tally.errors++
  }
}

/** Rounds of one block per target, the starting target rotating, until `seconds` have passed. */
async function phase(seconds: number, tallies: readonly Tally[]): Promise<number> {
  const start = performance.now()
  const until = start + seconds * 1000
  const block = spec.block ?? 1
  for (let round = 0; performance.now() < until; round++) {
    for (let i = 0; i < targets.length; i++) {
      const k = (round + i) % targets.length
      for (let n = 0; n < block; n++) await once(targets[k]!, tallies[k]!)
    }
  }
  return (performance.now() - start) / 1000
}

if (spec.warmupS > 0) await phase(spec.warmupS, targets.map(() => new Tally()))
const tallies = targets.map(() => new Tally())
const elapsedS = await phase(spec.durationS, tallies)
await Promise.all(targets.map((t) => t.pool.close()))

const runs = tallies.map((tally): LoadResult => {
  const answered = Object.values(tally.statuses).reduce((a, b) => a + b, 0)
  return {
    tool: `bench/load/paired.ts (undici, 1 connection per target, ${targets.length} targets taking turns in blocks of ${spec.block ?? 1})`,
    loop: 'closed',
    connections: 1,
    durationS: spec.durationS,
    warmupS: spec.warmupS,
    offeredRate: null,
    sentRate: (answered + tally.errors) / elapsedS,
    throughput: tally.latency.length / elapsedS,
    requests: answered + tally.errors,
    statuses: tally.statuses,
    errors: tally.errors,
    latency: tally.latency.percentiles(),
    errorLatency: tally.errorLatency.percentiles(),
  }
})
process.stdout.write(`${JSON.stringify({ runs })}\n`)
