// The process's own health, named as OpenTelemetry's Node.js and V8 runtime conventions
// name it: how late the event loop ran what was due (its delay), how much of the time it
// was busy, and the garbage collector's pauses. An answer that comes late waited either on
// the gateway's own event loop (a long turn, a pause of the collector) or on the machine
// (no core free); the delay says that the loop was late, the pauses say when the collector
// was the reason. Nothing here runs per request: the delay is sampled by one timer every
// 10 ms, the pauses are counted as the collector reports them (a few times a second under load).
//
// The delay is sampled here rather than by perf_hooks' monitorEventLoopDelay: that one's
// reset (needed for a figure per interval) makes its next sample only restart the count, so
// a stall that began just after a collection was never seen (measured on Node 24: 150 ms
// of a blocked loop right after a reset left no trace).
import type { Attributes } from '@opentelemetry/api'
import type { Histogram } from '@opentelemetry/sdk-metrics'
import { constants, createHistogram, performance, PerformanceObserver, type EventLoopUtilization, type PerformanceEntry, type RecordableHistogram } from 'node:perf_hooks'

/** What the runtime metrics are written into (the gateway's metrics batch). */
export interface RuntimeSink {
  gauge(name: string, description: string, points: readonly (readonly [Attributes, number])[], unit?: string): void
  counter(name: string, description: string, points: readonly (readonly [Attributes, number])[]): void
  histogram(name: string, description: string, unit: string, points: [Attributes, Histogram][]): void
}

/** How often the delay is sampled: a stall of the loop longer than this is seen whole. */
const DELAY_RESOLUTION_MS = 10

/** The conventions' boundaries (0.01, 0.1, 1, 10 s) with finer ones below: a scavenge takes about a millisecond. */
export const GC_BOUNDS_S: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 10]

/** `v8js.gc.type` by the kind a GC entry reports. */
const GC_TYPES: Readonly<Record<number, string>> = Object.freeze({
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
})

const DELAY_QUANTILES = [
  ['p50', 50],
  ['p90', 90],
  ['p99', 99],
] as const

/** A `gc` performance entry: its detail says which kind of collection paused. */
type GcEntry = PerformanceEntry & { readonly detail?: { readonly kind?: number } }

interface Pauses {
  readonly counts: number[]
  count: number
  sum: number
  min: number
  max: number
}

const NS_PER_S = 1e9

/** The event loop's delay and utilization and the collector's pauses, from construction to close(). */
export class NodeRuntime {
  /** How late each sample came, in ns (at least 1: the histogram takes no 0), since the previous collection. */
  private readonly delay: RecordableHistogram = createHistogram()
  private sampledAt = performance.now()
  private readonly sampler = setInterval(() => this.sample(), DELAY_RESOLUTION_MS).unref()
  private readonly pauses = new Map<string, Pauses>()
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.paused((entry as GcEntry).detail, entry.duration / 1000)
  })
  private readonly since: EventLoopUtilization = performance.eventLoopUtilization()
  private last: EventLoopUtilization = this.since

  constructor() {
    this.observer.observe({ entryTypes: ['gc'] })
  }

  private sample(): void {
    const now = performance.now()
    this.delay.record(Math.max(1, Math.round((now - this.sampledAt - DELAY_RESOLUTION_MS) * 1e6)))
    this.sampledAt = now
  }

  private paused(detail: GcEntry['detail'], seconds: number): void {
    const type = GC_TYPES[detail?.kind ?? -1] ?? 'unknown'
    let p = this.pauses.get(type)
    if (!p) this.pauses.set(type, (p = { counts: new Array<number>(GC_BOUNDS_S.length + 1).fill(0), count: 0, sum: 0, min: Infinity, max: 0 }))
    let i = 0
    while (i < GC_BOUNDS_S.length && seconds > GC_BOUNDS_S[i]!) i++
    p.counts[i]!++
    p.count++
    p.sum += seconds
    if (seconds < p.min) p.min = seconds
    if (seconds > p.max) p.max = seconds
  }

  /**
   * Writes the metrics. The delay and the utilization gauges cover the time since the previous
   * collection (by any reader: a scrape and an OTLP export each start a new interval); the
   * loop's time and the pauses count from the start.
   */
  collect(out: RuntimeSink): void {
    const d = this.delay
    // No sample since the last collection (two collections within one resolution): nothing to say.
    if (d.count > 0) {
      const gauge = (stat: string, ns: number, what: string) =>
        out.gauge(`nodejs.eventloop.delay.${stat}`, `Event loop ${what} delay since the previous collection: how late a timer due every ${DELAY_RESOLUTION_MS} ms ran.`, [[{}, ns / NS_PER_S]], 's')
      gauge('min', d.min, 'minimum')
      gauge('max', d.max, 'maximum')
      gauge('mean', d.mean, 'mean')
      gauge('stddev', d.stddev, 'standard deviation of the')
      for (const [stat, q] of DELAY_QUANTILES) gauge(stat, d.percentile(q), `${q}th percentile`)
      d.reset()
    }
    const now = performance.eventLoopUtilization()
    out.gauge('nodejs.eventloop.utilization', 'Share of the time since the previous collection the event loop was busy (0 to 1).', [[{}, performance.eventLoopUtilization(now, this.last).utilization]], '1')
    this.last = now
    const total = performance.eventLoopUtilization(now, this.since)
    out.counter('nodejs.eventloop.time', 'Time the event loop spent busy (active) and waiting for events (idle), in seconds since the gateway started.', [
      [{ 'nodejs.eventloop.state': 'active' }, total.active / 1000],
      [{ 'nodejs.eventloop.state': 'idle' }, total.idle / 1000],
    ])
    const points: [Attributes, Histogram][] = []
    for (const [type, p] of this.pauses) {
      points.push([{ 'v8js.gc.type': type }, { buckets: { boundaries: [...GC_BOUNDS_S], counts: [...p.counts] }, count: p.count, sum: p.sum, min: p.min, max: p.max }])
    }
    out.histogram('v8js.gc.duration', 'Garbage collection pauses of the main thread, by type.', 's', points)
  }

  close(): void {
    clearInterval(this.sampler)
    this.observer.disconnect()
  }
}
