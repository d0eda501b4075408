// What a specserve gateway's /metrics says of its own event loop and garbage collector
// (src/telemetry/node-runtime.ts), read at the start and the end of a slice of load: with
// the stall probe's figure for the box (bench/load/stall-probe.ts), it tells a pause of the
// gateway's own from a stall of the machine.

/** One scrape: the loop's longest delay since the previous scrape, and the pauses so far. */
export interface RuntimeScrape {
  readonly loopDelayMaxMs: number | null
  /** The share of the time up to that delay the loop's thread ran (near 0: it waited for a core). */
  readonly loopDelayCpu: number | null
  /** The share of the time since the previous scrape the loop was busy. */
  readonly loopBusy: number
  readonly gcPauses: number
  readonly gcMs: number
  /** Pauses longer than 10 ms so far (over the 0.01-s bucket). */
  readonly gcOver10ms: number
}

/** What the gateway did in one slice. */
export interface SliceRuntime {
  /** Its event loop's longest delay in the slice, ms (null: no sample in it), and the share of it its thread ran. */
  readonly loopDelayMs: number | null
  readonly loopDelayCpu: number | null
  /** The share of the slice its event loop was busy: near 1, it ran at capacity and requests queued. */
  readonly loopBusy: number
  /** Its main thread's GC pauses in the slice: all together, ms, and how many were over 10 ms. */
  readonly gcMs: number
  readonly gcOver10ms: number
}

const value = (line: string): number => Number(line.slice(line.lastIndexOf(' ') + 1))
/** Whether a sample line is of `name`, labelled or not. */
const of = (line: string, name: string): boolean => line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')

/** Reads the runtime figures out of Prometheus text; null when it has none (not a gateway with them). */
export function runtimeScrape(text: string): RuntimeScrape | null {
  let loopDelayMaxMs: number | null = null
  let loopDelayCpu: number | null = null
  let gcPauses = 0
  let gcS = 0
  let within10ms = 0
  let loopBusy: number | null = null
  for (const line of text.split('\n')) {
    if (of(line, 'nodejs_eventloop_delay_max')) loopDelayMaxMs = value(line) * 1000
    else if (of(line, 'specserve_eventloop_delay_max_cpu_ratio')) loopDelayCpu = value(line)
    else if (of(line, 'v8js_gc_duration_count')) gcPauses += value(line)
    else if (of(line, 'v8js_gc_duration_sum')) gcS += value(line)
    else if (of(line, 'v8js_gc_duration_bucket') && line.includes('le="0.01"')) within10ms += value(line)
    else if (of(line, 'nodejs_eventloop_utilization')) loopBusy = value(line)
  }
  return loopBusy !== null ? { loopDelayMaxMs, loopDelayCpu, loopBusy, gcPauses, gcMs: gcS * 1000, gcOver10ms: gcPauses - within10ms } : null
}

/** The slice between two scrapes (the second one's delay is the slice's own: each scrape starts a new interval). */
export function sliceRuntime(before: RuntimeScrape | null, after: RuntimeScrape | null): SliceRuntime | null {
  if (!before || !after) return null
  return { loopDelayMs: after.loopDelayMaxMs, loopDelayCpu: after.loopDelayCpu, loopBusy: after.loopBusy, gcMs: after.gcMs - before.gcMs, gcOver10ms: after.gcOver10ms - before.gcOver10ms }
}

/** Scrapes `url` (a gateway's /metrics); null when it does not answer 200 within 2 s or has no runtime figures. */
export async function scrapeRuntime(url: string): Promise<RuntimeScrape | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    const text = await res.text()
    return res.ok ? runtimeScrape(text) : null
  } catch {
    return null
  }
}
