// What held a run's worst slice of an interleaved open loop, from what the slice measured
// (bench/load/open-loop.ts): the box (the gateway's event loop ran late while its thread was
// off the CPU, or an idle thread of the load generator waited about as long for a core), the
// gateway's garbage collector, a long turn of the gateway's own event loop, the gateway at
// capacity (its loop busy throughout, requests queueing without a stall), or none of them.
import { summarize } from './stats.ts'
import type { LoadResult, SliceReading } from './types.ts'

/** A loop busy this share of a slice or more ran at capacity. */
const CAPACITY = 0.9

export type SliceCause = 'box' | 'gc' | 'turn' | 'capacity' | 'neither'

/** A run's slice p99s, a slice without a 2xx as NaN (JSON brings it as null). */
export const sliceP99s = (r: LoadResult): number[] => (r.sliceP99 ?? []).map((p) => (typeof p === 'number' ? p : NaN))

/** The slice with a run's highest p99 (its index); undefined when no slice had a 2xx. */
function worstIndex(r: LoadResult): number | undefined {
  const p = sliceP99s(r)
  let at: number | undefined
  p.forEach((v, k) => {
    if (Number.isFinite(v) && (at === undefined || v > p[at]!)) at = k
  })
  return at
}

const worstOf = (r: LoadResult): SliceReading | undefined => {
  const k = worstIndex(r)
  return k === undefined ? undefined : r.slices?.[k]
}

/** What the box and the server did in a run's worst slice, as table columns. */
export function worstSliceReadings(r: LoadResult): Record<string, number | undefined> {
  const s = worstOf(r)
  const some = (v: number | null | undefined) => v ?? undefined
  return {
    worst_slice_loop_busy: s?.runtime?.loopBusy,
    worst_slice_loop_delay: some(s?.runtime?.loopDelayMs),
    worst_slice_loop_cpu: some(s?.runtime?.loopDelayCpu),
    worst_slice_gc: s?.runtime?.gcMs,
    worst_slice_gc_long: s?.runtime?.gcOver10ms,
    worst_slice_probe: some(s?.probeMs),
    worst_slice_steal: some(s?.stealMs),
  }
}

/**
 * What held a run's worst slice, judged against how far its p99 stood above the run's median
 * slice (its excess): a wait shorter than half of that explains none of it. Undefined when the
 * slice has no reading of the server's event loop or of the probe.
 */
export function sliceCause(r: LoadResult): SliceCause | undefined {
  const s = worstOf(r)
  const loop = s?.runtime?.loopDelayMs
  if (!s || loop == null || s.probeMs === null) return undefined
  const p99s = summarize(sliceP99s(r))
  const excess = (p99s?.max ?? 0) - (p99s?.median ?? 0)
  // No wait long enough: the loop busy nearly throughout means requests queued behind its work.
  if (Math.max(loop, s.probeMs) < excess / 2) return s.runtime!.loopBusy >= CAPACITY ? 'capacity' : 'neither'
  // Only the idle thread waited long enough: a core was taken from the load generator's side.
  if (loop < excess / 2) return 'box'
  // The loop was late enough: off the CPU for most of it, or an idle thread held at least as long, it waited for a core.
  if ((s.runtime!.loopDelayCpu ?? 1) < 0.5 || s.probeMs >= loop) return 'box'
  if (s.runtime!.gcOver10ms >= 1 && s.runtime!.gcMs >= loop / 2) return 'gc'
  return 'turn'
}

const CAUSES: Readonly<Record<SliceCause, { found: string; remedy: string }>> = {
  box: {
    found: "stalls of the box: the gateway's event loop ran late while its thread was mostly off the CPU, or an idle thread of the load generator waited at least as long for a core: a core was taken (by other processes, or by the gateway's own other threads), from the gateway or from the load generator measuring it",
    remedy: 'What would close it: a quieter box (cores the load generator does not share), or runs long enough that rare stalls stay under 1% of them.',
  },
  gc: {
    found: "the gateway's own garbage collector: its pauses in the slice added up to half the loop's delay or more, one of them over 10 ms, while its thread ran and an idle thread did not wait as long",
    remedy: 'What would close it: fewer long pauses of the collector (less garbage per request, or a larger young generation).',
  },
  turn: {
    found: "a long turn of the gateway's own event loop: its thread ran through most of the delay, an idle thread did not wait as long, and the collector did not pause long",
    remedy: 'What would close it: a CPU profile of those slices, to find the long turn and cut it.',
  },
  capacity: {
    found: "the gateway at capacity: its event loop was busy nearly throughout the slice and never stalled long, so requests queued behind its work (for a free connection, in the sockets) for the CPU it got",
    remedy: 'What would close it: less event-loop CPU per request, or more CPU for the gateway than this box leaves it beside the load generator.',
  },
  neither: {
    found: "neither: the gateway's event loop and an idle thread were late by less than half of how far the slice's p99 stood above the run's median slice, and the loop was not busy throughout, so the tail came from elsewhere (the load generator's own thread, the network stack)",
    remedy: "What would close it: a reading of the load generator's own delay in those slices.",
  },
}

/**
 * What the worst slices of the repetitions measured (medians) and what held each (`causes`,
 * one per repetition that could say); the remedy is the most frequent cause's.
 */
export function worstSlicesWhy(summaryOf: (metric: string) => number | undefined, causes: readonly SliceCause[]): { found: string; remedy: string; top?: SliceCause } {
  if (!causes.length) {
    return {
      found: "this run has no reading of the gateway's event loop and of an idle thread in them, so a stall of the box cannot be told from a pause of the gateway's own (a GC, a long turn of its event loop).",
      remedy: "What would close it: the gateway's event-loop delay and GC pauses in those slices (its /metrics), then a quieter box or the gateway pause removed.",
    }
  }
  const f = (v: number | undefined) => (v === undefined ? '?' : v.toFixed(1))
  const pct = (v: number | undefined) => (v === undefined ? '?' : `${Math.round(v * 100)}%`)
  const long = summaryOf('worst_slice_gc_long')
  const seen =
    `in those slices (medians of repetitions) the gateway's event loop was busy ${pct(summaryOf('worst_slice_loop_busy'))} of the time and ran up to ${f(summaryOf('worst_slice_loop_delay'))} ms late, its thread running ${pct(summaryOf('worst_slice_loop_cpu'))} of that time, its garbage collector paused ` +
    `${f(summaryOf('worst_slice_gc'))} ms in all (${long === undefined ? '?' : Number.isInteger(long) ? long : long.toFixed(1)} over 10 ms), and an idle thread of the ` +
    `load generator waited up to ${f(summaryOf('worst_slice_probe'))} ms for a core (the hypervisor took ${f(summaryOf('worst_slice_steal'))} ms of the box's CPU)`
  const order: SliceCause[] = ['box', 'gc', 'turn', 'capacity', 'neither']
  const counts = order.map((c) => [c, causes.filter((x) => x === c).length] as const).filter(([, n]) => n > 0)
  const top = counts.reduce((a, b) => (b[1] > a[1] ? b : a))[0]
  const each = counts.map(([c, n]) => `${n} of ${causes.length}, ${CAUSES[c].found}`).join('; ')
  return { found: `${seen}. What held the worst slice of each repetition: ${each}.`, remedy: CAUSES[top].remedy, top }
}
