// Open-loop load generator (a child process of the bench): starts requests at a fixed
// rate whatever the server does, and measures each latency from the request's
// *scheduled* start, so a stalled server cannot hide its stall by slowing the sender
// (no coordinated omission). autocannon's --overallRate is not this: each connection
// sends back to back until its per-second quota is used up, then idles, so "50% load"
// is really bursts at full load. Usage: node open-loop.ts '<LoadSpec JSON>'; prints a LoadResult.
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import { OpenTally, openLoopResult } from '../lib/open-tally.ts'
import type { LoadSpec } from '../lib/types.ts'

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec
if (!spec.rate || spec.rate <= 0) throw new Error('open-loop needs a rate')
const url = new URL(spec.url)
const pool = new Pool(url.origin, { connections: spec.connections, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 })
const headers = { 'content-type': 'application/json', ...spec.headers }

async function fire(tally: OpenTally, scheduled: number): Promise<void> {
  const sentAt = performance.now()
  try {
    const res = await pool.request({ path: url.pathname, method: spec.method ?? 'POST', headers, body: spec.body })
    const ok = res.statusCode >= 200 && res.statusCode < 300
    const text = ok && spec.readBodies ? await res.body.text() : undefined
    if (text === undefined) await res.body.dump()
    const end = performance.now()
    tally.answered(res.statusCode, end - scheduled, end - sentAt, text)
  } catch {
    tally.failed()
  }
}

/** Starts `rate` requests per second for `seconds`; resolves once every one has an outcome. */
async function phase(seconds: number, tally: OpenTally): Promise<{ sent: number; elapsedS: number }> {
  const rate = spec.rate as number
  const total = Math.round(rate * seconds)
  const interval = 1000 / rate
  const start = performance.now()
  const inFlight = new Set<Promise<void>>()
  let sent = 0
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1)
    while (sent < due) {
      const p = fire(tally, start + sent * interval)
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
      sent++
    }
    const wait = start + sent * interval - performance.now()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)))
  }
  const elapsedS = (performance.now() - start) / 1000
  await Promise.all(inFlight)
  return { sent, elapsedS }
}

if (spec.warmupS > 0) await phase(spec.warmupS, new OpenTally(spec.missAfterMs))
const tally = new OpenTally(spec.missAfterMs)
const { sent, elapsedS } = await phase(spec.durationS, tally)
await pool.close()
process.stdout.write(`${JSON.stringify(openLoopResult(spec, tally, sent, elapsedS))}\n`)
