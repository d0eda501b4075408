// Open-loop load generator (a child process of the bench): starts requests at a fixed
// rate whatever the server does, and measures each latency from the request's
// *scheduled* start, so a stalled server cannot hide its stall by slowing the sender
// (no coordinated omission). autocannon's --overallRate is not this: each connection
// sends back to back until its per-second quota is used up, then idles, so "50% load"
// is really bursts at full load. Usage: node open-loop.ts '<LoadSpec JSON>'; prints a LoadResult.
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import { Samples } from '../lib/stats.ts'
import type { LoadResult, LoadSpec } from '../lib/types.ts'

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec
if (!spec.rate || spec.rate <= 0) throw new Error('open-loop needs a rate')
const url = new URL(spec.url)
const pool = new Pool(url.origin, { connections: spec.connections, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 })
const headers = { 'content-type': 'application/json', ...spec.headers }

class Tally {
  readonly latency = new Samples()
  readonly sendLatency = new Samples()
  readonly errorLatency = new Samples()
  readonly errorSendLatency = new Samples()
  readonly serverElapsed = new Samples()
  readonly statuses: Record<string, number> = {}
  readonly chosen: Record<string, number> = {}
  errors = 0
  late = 0
  serverLate = 0
}

function readBody(text: string, tally: Tally): void {
  const body = JSON.parse(text) as { elapsed_ms?: number; decision?: { chosen?: string | null } }
  if (typeof body.elapsed_ms === 'number') {
    tally.serverElapsed.push(body.elapsed_ms)
    if (spec.missAfterMs !== undefined && body.elapsed_ms > spec.missAfterMs) tally.serverLate++
  }
  const chosen = body.decision?.chosen ?? '(none)'
  tally.chosen[chosen] = (tally.chosen[chosen] ?? 0) + 1
}

async function fire(tally: Tally, scheduled: number): Promise<void> {
  const sentAt = performance.now()
  try {
    const res = await pool.request({ path: url.pathname, method: spec.method ?? 'POST', headers, body: spec.body })
    const ok = res.statusCode >= 200 && res.statusCode < 300
    const text = ok && spec.readBodies ? await res.body.text() : undefined
    if (text === undefined) await res.body.dump()
    const end = performance.now()
    const latency = end - scheduled
    tally.statuses[res.statusCode] = (tally.statuses[res.statusCode] ?? 0) + 1
    if (spec.missAfterMs !== undefined && latency > spec.missAfterMs) tally.late++
    if (ok) {
      tally.latency.push(latency)
      tally.sendLatency.push(end - sentAt)
      if (text !== undefined) readBody(text, tally)
    } else {
      tally.errorLatency.push(latency)
      tally.errorSendLatency.push(end - sentAt)
    }
  } catch {
    tally.errors++
    tally.late++
  }
}

/** Starts `rate` requests per second for `seconds`; resolves once every one has an outcome. */
async function phase(seconds: number, tally: Tally): Promise<{ sent: number; elapsedS: number }> {
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

if (spec.warmupS > 0) await phase(spec.warmupS, new Tally())
const tally = new Tally()
const { sent, elapsedS } = await phase(spec.durationS, tally)
await pool.close()

const answered = Object.values(tally.statuses).reduce((a, b) => a + b, 0)
const result: LoadResult = {
  tool: `bench/load/open-loop.ts (undici ${spec.connections} connections)`,
  loop: 'open',
  connections: spec.connections,
  durationS: spec.durationS,
  warmupS: spec.warmupS,
  offeredRate: spec.rate,
  sentRate: sent / elapsedS,
  throughput: tally.latency.length / spec.durationS,
  requests: answered + tally.errors,
  statuses: tally.statuses,
  errors: tally.errors,
  latency: tally.latency.percentiles(),
  sendLatency: tally.sendLatency.percentiles(),
  errorLatency: tally.errorLatency.percentiles(),
  errorSendLatency: tally.errorSendLatency.percentiles(),
  ...(spec.missAfterMs !== undefined ? { missRate: tally.late / sent } : {}),
  ...(spec.readBodies
    ? { serverElapsed: tally.serverElapsed.percentiles(), serverMissRate: tally.serverLate / Math.max(1, tally.serverElapsed.length), chosen: tally.chosen }
    : {}),
}
process.stdout.write(`${JSON.stringify(result)}\n`)
