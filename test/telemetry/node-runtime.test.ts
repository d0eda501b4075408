// The runtime metrics as the gateway's metrics batch receives them: the event loop's delay
// after a stall, its busy and idle time, the collector's pauses by type, each reader's own
// interval, and nothing counted once closed.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Attributes } from '@opentelemetry/api'
import type { Histogram } from '@opentelemetry/sdk-metrics'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DELAY_BOUNDS_S, GC_BOUNDS_S, NodeRuntime, type RuntimeSink, type RuntimeView } from '../../src/telemetry/node-runtime.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

interface Collected {
  readonly gauges: Map<string, number>
  readonly counters: Map<string, readonly (readonly [Attributes, number])[]>
  readonly histograms: Map<string, [Attributes, Histogram][]>
}

function collect(view: RuntimeView): Collected {
  const c: Collected = { gauges: new Map(), counters: new Map(), histograms: new Map() }
  const sink: RuntimeSink = {
    gauge: (name, _d, points) => c.gauges.set(name, points[0]![1]),
    counter: (name, _d, points) => c.counters.set(name, points),
    histogram: (name, _d, _u, points) => c.histograms.set(name, points),
  }
  view.collect(sink)
  return c
}

/** Lets the loop turn until `done` holds (the collector's entries and the delay's sample arrive on later turns). */
async function turnsUntil(done: () => boolean, turns = 200): Promise<void> {
  for (let i = 0; i < turns && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 0))
}

const majorPauses = (c: Collected): Histogram | undefined => c.histograms.get('v8js.gc.duration')?.find(([a]) => a['v8js.gc.type'] === 'major')?.[1]

let runtime: NodeRuntime | undefined
let witness: NodeRuntime | undefined
afterEach(() => {
  runtime?.close()
  witness?.close()
  vi.useRealTimers()
  vi.restoreAllMocks()
})

/** A turn of the loop held for `ms`: what a stuck loop looks like from outside. */
function hold(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until);
}

describe('NodeRuntime', () => {
  it('reports a stall of the event loop as its delay, even one that begins right after a collection', async () => {
    runtime = new NodeRuntime()
    const view = runtime.view()
    runtime.start()
    collect(view) // a new interval
    hold(150)
    let c: Collected | undefined
    await turnsUntil(() => (c = collect(view)).gauges.has('nodejs.eventloop.delay.max'))
    // The sample due 10 ms into the stall ran after it: 140 ms late or more.
    expect(c!.gauges.get('nodejs.eventloop.delay.max')).toBeGreaterThanOrEqual(0.14)
    for (const stat of ['min', 'mean', 'stddev', 'p50', 'p90', 'p99']) expect(c!.gauges.get(`nodejs.eventloop.delay.${stat}`)).toBeGreaterThanOrEqual(0)
  })

  it('says whether the thread ran through its longest delay: a long turn of its own, or a wait off the CPU', async () => {
    runtime = new NodeRuntime()
    const view = runtime.view()
    runtime.start()
    const longest = async (): Promise<Collected> => {
      let c: Collected | undefined
      await turnsUntil(() => (c = collect(view)).gauges.has('nodejs.eventloop.delay.max'))
      expect(c!.gauges.get('nodejs.eventloop.delay.max')).toBeGreaterThanOrEqual(0.14)
      return c!
    }
    collect(view)
    // Busy: on the CPU whenever the box gives it a core (a loaded box may give it less than all of it).
    const [wall, cpu] = [performance.now(), process.threadCpuUsage()]
    hold(150)
    const ran = (process.threadCpuUsage(cpu).user + process.threadCpuUsage(cpu).system) / 1000 / (performance.now() - wall)
    expect((await longest()).gauges.get('specserve_eventloop_delay_max_cpu_ratio')).toBeGreaterThanOrEqual(Math.min(0.5, ran / 2))
    collect(view)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150) // blocked: off the CPU throughout
    expect((await longest()).gauges.get('specserve_eventloop_delay_max_cpu_ratio')).toBeLessThan(0.3)
  })

  it('counts the share of the delay itself the thread ran, not of the idle period before it', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    let [wallMs, cpuMs] = [1000, 0]
    vi.spyOn(performance, 'now').mockImplementation(() => wallMs)
    vi.spyOn(process, 'threadCpuUsage').mockImplementation(() => ({ user: cpuMs * 1000, system: 0 }))
    runtime = new NodeRuntime()
    const view = runtime.view()
    runtime.start()
    const lateSample = (periodMs: number, ranMs: number) => {
      wallMs += periodMs
      cpuMs += ranMs
      vi.advanceTimersByTime(10) // the sampler's one callback, reading the clocks as set
      return collect(view).gauges
    }
    // Idle for the 10-ms period, then a turn of 30 ms on the CPU: 30 ms late, and it ran all of it.
    let g = lateSample(40, 30)
    expect(g.get('nodejs.eventloop.delay.max')).toBeCloseTo(0.03)
    expect(g.get('specserve_eventloop_delay_max_cpu_ratio')).toBe(1)
    // 30 ms late, of which it ran 10: a third.
    g = lateSample(40, 10)
    expect(g.get('specserve_eventloop_delay_max_cpu_ratio')).toBeCloseTo(1 / 3)
    // Both samples in the cumulative histogram, in the bucket above 25 ms up to 50 ms; a sample on time in the first.
    lateSample(10, 0)
    const delays = collect(view).histograms.get('specserve_eventloop_delay_seconds')![0]![1]
    expect(delays.buckets.boundaries).toEqual(DELAY_BOUNDS_S)
    expect(delays.count).toBe(3)
    expect(delays.buckets.counts[DELAY_BOUNDS_S.indexOf(0.05)]).toBe(2)
    expect(delays.buckets.counts[0]).toBe(1)
    expect(delays.sum).toBeCloseTo(0.06)
  })

  it('samples nothing before start: views are made first, while the readers that own them are built', async () => {
    runtime = new NodeRuntime()
    const view = runtime.view()
    // A started runtime as the witness: once it has a delay sample and the collection's pause, so would the other.
    witness = new NodeRuntime()
    const watching = witness.view()
    witness.start()
    gc()
    await turnsUntil(() => {
      const seen = collect(watching)
      return seen.gauges.has('nodejs.eventloop.delay.max') && majorPauses(seen) !== undefined
    })
    expect(majorPauses(collect(watching))).toBeDefined()
    const c = collect(view)
    expect(c.gauges.has('nodejs.eventloop.delay.max')).toBe(false)
    expect(c.histograms.get('v8js.gc.duration')).toEqual([])
    expect(c.histograms.has('specserve_eventloop_delay_seconds')).toBe(false)
  })

  it("gives each reader its own interval: one reader's collection leaves another's stall in place", async () => {
    runtime = new NodeRuntime()
    const [scrapes, exports] = [runtime.view(), runtime.view()]
    runtime.start()
    hold(150)
    let first: Collected | undefined
    await turnsUntil(() => (first = collect(scrapes)).gauges.has('nodejs.eventloop.delay.max'))
    expect(first!.gauges.get('nodejs.eventloop.delay.max')).toBeGreaterThanOrEqual(0.14)
    // The other reader collects after the first one did, and still sees the stall in its own interval.
    const second = collect(exports)
    expect(second.gauges.get('nodejs.eventloop.delay.max')).toBeGreaterThanOrEqual(0.14)
    // The cumulative histogram is the same for both (no sample ran between the two collections): the stall's sample above 100 ms.
    const delays = first!.histograms.get('specserve_eventloop_delay_seconds')![0]![1]
    expect(second.histograms.get('specserve_eventloop_delay_seconds')![0]![1]).toEqual(delays)
    expect(delays.buckets.counts.slice(DELAY_BOUNDS_S.indexOf(0.1) + 1).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1)
  })

  it('counts the loop busy and idle since it started, and its utilization since the last collection', () => {
    runtime = new NodeRuntime()
    const view = runtime.view()
    runtime.start()
    hold(30)
    const c = collect(view)
    const time = new Map(c.counters.get('nodejs.eventloop.time')!.map(([a, v]) => [a['nodejs.eventloop.state'], v]))
    expect(time.get('active')).toBeGreaterThanOrEqual(0.03)
    expect(time.get('idle')).toBeGreaterThanOrEqual(0)
    const utilization = c.gauges.get('nodejs.eventloop.utilization')!
    expect(utilization).toBeGreaterThan(0)
    expect(utilization).toBeLessThanOrEqual(1)
  })

  it('counts a full collection as a major pause, in its bucket, and nothing after close', async () => {
    runtime = new NodeRuntime()
    const view = runtime.view()
    runtime.start()
    gc()
    let pauses: Histogram | undefined
    await turnsUntil(() => (pauses = majorPauses(collect(view))) !== undefined)
    expect(pauses!.count).toBeGreaterThanOrEqual(1)
    expect(pauses!.buckets.boundaries).toEqual(GC_BOUNDS_S)
    expect(pauses!.buckets.counts.reduce((a, b) => a + b, 0)).toBe(pauses!.count)
    expect(pauses!.sum).toBeGreaterThan(0)
    expect(pauses!.max).toBeGreaterThanOrEqual(pauses!.min!)
    // The bucket counted is the first boundary at or above the longest pause.
    const seen = pauses!.buckets.counts.findLastIndex((n) => n > 0)
    expect(pauses!.max).toBeLessThanOrEqual(GC_BOUNDS_S[seen] ?? Infinity)
    expect(pauses!.max).toBeGreaterThan(GC_BOUNDS_S[seen - 1] ?? 0)

    const before = pauses!.count
    runtime.close()
    // A runtime still open sees the next full collection; the closed one must not count it.
    witness = new NodeRuntime()
    const watching = witness.view()
    witness.start()
    gc()
    await turnsUntil(() => majorPauses(collect(watching)) !== undefined)
    expect(majorPauses(collect(watching))!.count).toBeGreaterThanOrEqual(1)
    expect(majorPauses(collect(view))!.count).toBe(before)
  })
})
