// The process's own health, named as OpenTelemetry's Node.js and V8 runtime conventions
// name it: how late the event loop ran what was due (its delay), how much of the time it
// was busy, and the garbage collector's pauses. An answer that comes late waited either on
// the gateway's own event loop (a long turn, a pause of the collector) or on the machine
// (no core free); the delay says that the loop was late, the pauses say when the collector
// was the reason, and the share of a late interval the thread spent running says whether
// the loop was working (a long turn) or waiting for a core. Nothing here runs per request: the
// delay is sampled by one timer every 10 ms (with the thread's CPU clock), the pauses are
// counted as the collector reports them (a few times a second under load).
//
// The delay is sampled here rather than by perf_hooks' monitorEventLoopDelay: that one's
// reset (needed for a figure per interval) makes its next sample only restart the count, so
// a stall that began just after a collection was never seen (measured on Node 24: 150 ms
// of a blocked loop right after a reset left no trace).
import type { Attributes } from '@opentelemetry/api'
import type { Histogram } from '@opentelemetry/sdk-metrics'
import type { MetricsSink } from '../types.ts'
import { constants, createHistogram, performance, PerformanceObserver, type EventLoopUtilization, type PerformanceEntry, type RecordableHistogram } from 'node:perf_hooks'

/** What the runtime metrics are written into (the gateway's metrics batch): a components' sink that also takes histograms. */
export interface RuntimeSink extends MetricsSink {
  histogram(name: string, description: string, unit: string, points: [Attributes, Histogram][]): void
}

/** How often the delay is sampled: a stall of the loop longer than this is seen whole. */
const DELAY_RESOLUTION_MS = 10

/** The conventions' boundaries (0.01, 0.1, 1, 10 s) with finer ones below: a scavenge takes about a millisecond. */
export const GC_BOUNDS_S: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 10]
/** The delay's buckets, from a millisecond (a busy loop's usual lateness) to seconds (a stuck one). */
export const DELAY_BOUNDS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

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

/** Values in seconds counted into buckets: bucket i holds those at or below bounds[i] (and above the one before), the last those above them all. */
class Tally {
  private readonly bounds: readonly number[]
  private readonly counts: number[]
  count = 0
  private sum = 0
  private min = Infinity
  private max = 0

  constructor(bounds: readonly number[]) {
    this.bounds = bounds
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  add(seconds: number): void {
    let i = 0
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++
    this.counts[i]!++
    this.count++
    this.sum += seconds
    if (seconds < this.min) this.min = seconds
    if (seconds > this.max) this.max = seconds
  }

  histogram(): Histogram {
    return { buckets: { boundaries: [...this.bounds], counts: [...this.counts] }, count: this.count, sum: this.sum, ...(this.count ? { min: this.min, max: this.max } : {}) }
  }
}

const NS_PER_S = 1e9

/** What one reader (the Prometheus route, the OTLP export) collects: its intervals run from its own previous collection. */
export interface RuntimeView {
  collect(out: RuntimeSink): void
}

/** A view's interval: the delays in ns (at least 1: the histogram takes no 0), and the longest with the share of it the thread ran. */
interface Interval {
  readonly delays: RecordableHistogram
  longestNs: number
  longestOnCpu: number
}

/** The main thread's CPU time so far, ms (user and system). */
const threadCpuMs = (): number => {
  const { user, system } = process.threadCpuUsage()
  return (user + system) / 1000
}

/**
 * The event loop's delay and utilization and the collector's pauses, from start() to close().
 * One sampler and one observer serve every reader; each reader gets a view of its own, so a
 * scrape does not take from an OTLP export's interval the stalls it has not seen. Views are
 * made before start(): nothing runs until the readers that own them exist.
 */
export class NodeRuntime {
  /** Each view's interval since its previous collection. */
  private readonly intervals: Interval[] = []
  private sampledAt = 0
  private cpuAt = 0
  private sampler: NodeJS.Timeout | undefined
  private readonly pauses = new Map<string, Tally>()
  /** Every sample's lateness since start, for a histogram whose rate() any reader can take over any range. */
  private readonly lateness = new Tally(DELAY_BOUNDS_S)
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.paused((entry as GcEntry).detail, entry.duration / 1000)
  })
  private since: EventLoopUtilization = performance.eventLoopUtilization()

  /** Starts sampling the delay and counting the pauses (once). */
  start(): void {
    if (this.sampler) return
    this.sampledAt = performance.now()
    this.cpuAt = threadCpuMs()
    this.since = performance.eventLoopUtilization()
    this.sampler = setInterval(() => this.sample(), DELAY_RESOLUTION_MS).unref()
    this.observer.observe({ entryTypes: ['gc'] })
  }

  /**
   * How late this sample ran, and how much of that delay the thread spent running (its CPU
   * time since the last sample over the delay, at most 1): near 1, the gateway's own long
   * turn; near 0, a wait for a core (or a blocking call). The period before the delay is left
   * out of the share: an idle loop is off the CPU then by design.
   */
  private sample(): void {
    const now = performance.now()
    const cpu = threadCpuMs()
    const lateMs = now - this.sampledAt - DELAY_RESOLUTION_MS
    const lateNs = Math.max(1, Math.round(lateMs * 1e6))
    const onCpu = lateMs > 0 ? Math.min(1, (cpu - this.cpuAt) / lateMs) : 1
    this.sampledAt = now
    this.cpuAt = cpu
    this.lateness.add(Math.max(0, lateMs) / 1000)
    for (const interval of this.intervals) {
      interval.delays.record(lateNs)
      if (lateNs > interval.longestNs) {
        interval.longestNs = lateNs
        interval.longestOnCpu = onCpu
      }
    }
  }

  private paused(detail: GcEntry['detail'], seconds: number): void {
    const type = GC_TYPES[detail?.kind ?? -1] ?? 'unknown'
    let p = this.pauses.get(type)
    if (!p) this.pauses.set(type, (p = new Tally(GC_BOUNDS_S)))
    p.add(seconds)
  }

  /**
   * A reader's view. Its delay and utilization gauges cover the time since its own previous
   * collection (the first: since the view was made); the loop's time and the pauses count
   * from the runtime's start, the same for every view.
   */
  view(): RuntimeView {
    const interval: Interval = { delays: createHistogram(), longestNs: 0, longestOnCpu: 1 }
    this.intervals.push(interval)
    let last = performance.eventLoopUtilization()
    return {
      collect: (out) => {
        this.collectDelay(interval, out)
        const now = performance.eventLoopUtilization()
        out.gauge('nodejs.eventloop.utilization', "Share of the time since this reader's previous collection the event loop was busy (0 to 1).", [[{}, performance.eventLoopUtilization(now, last).utilization]], '1')
        last = now
        this.collectTotals(now, out)
      },
    }
  }

  private collectDelay(interval: Interval, out: RuntimeSink): void {
    const d = interval.delays
    // No sample since the last collection (two collections within one resolution): nothing to say.
    if (d.count === 0) return
    const gauge = (stat: string, ns: number, what: string) =>
      out.gauge(`nodejs.eventloop.delay.${stat}`, `Event loop ${what} delay since this reader's previous collection: how late a timer due every ${DELAY_RESOLUTION_MS} ms ran.`, [[{}, ns / NS_PER_S]], 's')
    gauge('min', d.min, 'minimum')
    gauge('max', d.max, 'maximum')
    gauge('mean', d.mean, 'mean')
    gauge('stddev', d.stddev, 'standard deviation of the')
    for (const [stat, q] of DELAY_QUANTILES) gauge(stat, d.percentile(q), `${q}th percentile`)
    out.gauge(
      'specserve_eventloop_delay_max_cpu_ratio',
      "Of the event loop's longest delay since this reader's previous collection, the share its thread ran (near 1: the gateway's own long turn; near 0: it waited for a core, or blocked).",
      [[{}, interval.longestOnCpu]],
      '1',
    )
    d.reset()
    interval.longestNs = 0
    interval.longestOnCpu = 1
  }

  private collectTotals(now: EventLoopUtilization, out: RuntimeSink): void {
    const total = performance.eventLoopUtilization(now, this.since)
    out.counter(
      'nodejs.eventloop.time',
      "Time the event loop spent busy (active) and waiting for events (idle), in seconds since the gateway's metrics started.",
      [
        [{ 'nodejs.eventloop.state': 'active' }, total.active / 1000],
        [{ 'nodejs.eventloop.state': 'idle' }, total.idle / 1000],
      ],
      's',
    )
    const points: [Attributes, Histogram][] = []
    for (const [type, p] of this.pauses) points.push([{ 'v8js.gc.type': type }, p.histogram()])
    out.histogram('v8js.gc.duration', 'Garbage collection pauses of the main thread, by type.', 's', points)
    if (this.lateness.count > 0) {
      out.histogram(
        'specserve_eventloop_delay_seconds',
        `How late each sample of the event loop (due every ${DELAY_RESOLUTION_MS} ms) ran, since the gateway's metrics started: the same for every reader, over any range.`,
        's',
        [[{}, this.lateness.histogram()]],
      )
    }
  }

  close(): void {
    clearInterval(this.sampler)
    this.observer.disconnect()
  }
}
