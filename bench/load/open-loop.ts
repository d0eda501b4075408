// Open-loop load generator (a child process of the bench): starts requests at a fixed
// rate whatever the server does, and measures each latency from the request's
// *scheduled* start, so a stalled server cannot hide its stall by slowing the sender
// (no coordinated omission). autocannon's --overallRate is not this: each connection
// sends back to back until its per-second quota is used up, then idles, so "50% load"
// is really bursts at full load.
//
// One target (a LoadSpec with `url`): prints its LoadResult. Several (an
// OpenInterleavedSpec with `targets`): each is warmed up, then they take turns in slices
// at the same rate, the order reversed every other round as in interleaved.ts (a b c, c b a),
// so a slower stretch of a shared box lands on all of them alike and the middle target's
// slices are next to both others'. Each slice opens with LEAD_IN_S of load not measured: a
// target idle while the others ran is not judged on its first requests back. Prints
// { runs: LoadResult[] }, each with its slices' own p99s (sliceP99, in round order: slice k of
// every target ran in the same round; null for a slice without a 2xx) and what the box and
// the server did in each (slices: an idle thread's longest wait for a core, the hypervisor's
// steal, and for a target with a metricsUrl its event loop's longest delay and GC pauses).
// Usage: node open-loop.ts '<spec JSON>'.
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import { boxTicks, stealMs } from '../lib/cpu.ts'
import { scrapeRuntime, sliceRuntime, type RuntimeScrape } from '../lib/gateway-runtime.ts'
import { LEAD_IN_S, OpenTally, openLoopResult } from '../lib/open-tally.ts'
import { Samples } from '../lib/stats.ts'
import type { LoadResult, LoadSpec, OpenInterleavedSpec, SliceReading } from '../lib/types.ts'
import { StallProbe } from './stall-probe.ts'

interface Sender {
  readonly pool: Pool
  readonly path: string
  readonly method: 'POST' | 'GET'
  readonly headers: Record<string, string>
  readonly body: string | undefined
  readonly readBodies: boolean
}

function sender(target: Pick<LoadSpec, 'url' | 'method' | 'body' | 'headers'>, connections: number, readBodies = false): Sender {
  const url = new URL(target.url)
  return {
    pool: new Pool(url.origin, { connections, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 }),
    path: url.pathname,
    method: target.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: target.body,
    readBodies,
  }
}

async function fire(to: Sender, tally: OpenTally, scheduled: number, slice?: Samples): Promise<void> {
  const sentAt = performance.now()
  try {
    const res = await to.pool.request({ path: to.path, method: to.method, headers: to.headers, body: to.body })
    const ok = res.statusCode >= 200 && res.statusCode < 300
    const text = ok && to.readBodies ? await res.body.text() : undefined
    if (text === undefined) await res.body.dump()
    const end = performance.now()
    tally.answered(res.statusCode, end - scheduled, end - sentAt, text)
    if (ok) slice?.push(end - scheduled)
  } catch {
    tally.failed()
  }
}

/** Starts `rate` requests per second for `seconds`; resolves once every one has an outcome. */
async function phase(to: Sender, rate: number, seconds: number, tally: OpenTally, slice?: Samples): Promise<{ sent: number; elapsedS: number }> {
  const total = Math.round(rate * seconds)
  const interval = 1000 / rate
  const start = performance.now()
  const inFlight = new Set<Promise<void>>()
  let sent = 0
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1)
    while (sent < due) {
      const p = fire(to, tally, start + sent * interval, slice)
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

async function single(spec: LoadSpec & { rate: number }): Promise<LoadResult> {
  const to = sender(spec, spec.connections, spec.readBodies)
  if (spec.warmupS > 0) await phase(to, spec.rate, spec.warmupS, new OpenTally(spec.missAfterMs))
  const tally = new OpenTally(spec.missAfterMs)
  const { sent, elapsedS } = await phase(to, spec.rate, spec.durationS, tally)
  await to.pool.close()
  return openLoopResult(spec, tally, sent, elapsedS)
}

type SliceState = { tally: OpenTally; sent: number; elapsedS: number; sliceP99: (number | null)[]; slices: SliceReading[] }

/** The measured rounds: each target's slice in turn, the order reversed every other round, with each slice's readings. */
async function slicesOf(
  spec: OpenInterleavedSpec,
  rounds: number,
  senders: Sender[],
  state: SliceState[],
  probe: StallProbe,
): Promise<void> {
  const scrape = (metricsUrl: string | undefined): Promise<RuntimeScrape | null> => (metricsUrl === undefined ? Promise.resolve(null) : scrapeRuntime(metricsUrl))
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < senders.length; k++) {
      const i = round % 2 === 0 ? k : senders.length - 1 - k
      const st = state[i]!
      const { metricsUrl } = spec.targets[i]!
      const slice = new Samples()
      await phase(senders[i]!, spec.rate, LEAD_IN_S, new OpenTally(undefined))
      // Each reading starts the slice's interval: the gateway's loop delay, the probe's longest wait.
      const [before] = await Promise.all([scrape(metricsUrl), probe.take()])
      const box = boxTicks()
      const { sent, elapsedS } = await phase(senders[i]!, spec.rate, spec.sliceS, st.tally, slice)
      const [probeMs, after] = await Promise.all([probe.take(), scrape(metricsUrl)])
      st.sent += sent
      st.elapsedS += elapsedS
      st.sliceP99.push(slice.percentiles()?.p99 ?? null)
      st.slices.push({ probeMs, stealMs: stealMs(box, boxTicks()), ...(metricsUrl === undefined ? {} : { runtime: sliceRuntime(before, after) }) })
    }
  }
}

async function interleaved(spec: OpenInterleavedSpec): Promise<LoadResult[]> {
  if (!(spec.sliceS > 0)) throw new Error(`sliceS must be positive, got ${spec.sliceS}`)
  const rounds = Math.max(1, Math.round(spec.durationS / spec.sliceS))
  const senders = spec.targets.map((t) => sender(t, spec.connections))
  const state: SliceState[] = spec.targets.map(() => ({ tally: new OpenTally(undefined), sent: 0, elapsedS: 0, sliceP99: [], slices: [] }))
  const probe = new StallProbe()
  try {
    if (spec.warmupS > 0) for (const to of senders) await phase(to, spec.rate, spec.warmupS, new OpenTally(undefined))
    await slicesOf(spec, rounds, senders, state, probe)
  } finally {
    await Promise.all([...senders.map((to) => to.pool.close()), probe.close()])
  }
  return spec.targets.map(({ metricsUrl: _, ...t }, i) => {
    const st = state[i]!
    const asRun = { ...t, connections: spec.connections, rate: spec.rate, durationS: rounds * spec.sliceS, warmupS: spec.warmupS }
    const others = spec.targets.length - 1
    const tool = `bench/load/open-loop.ts (undici ${spec.connections} connections; taking turns with ${others} other target${others === 1 ? '' : 's'}, ${rounds} slices of ${spec.sliceS} s, each after ${LEAD_IN_S} s not measured)`
    return { ...openLoopResult(asRun, st.tally, st.sent, st.elapsedS), tool, sliceP99: st.sliceP99, slices: st.slices }
  })
}

const spec = JSON.parse(process.argv[2] ?? '{}') as (LoadSpec & { rate: number }) | OpenInterleavedSpec
if (!spec.rate || spec.rate <= 0) throw new Error('open-loop needs a rate')
const out = 'targets' in spec ? { runs: await interleaved(spec) } : await single(spec)
process.stdout.write(`${JSON.stringify(out)}\n`)
