// CPU time a process has used (user + system, all its threads), read from /proc: how the
// bench says what each request cost the gateway, and a record the broker, on shared cores.
// Linux only; null elsewhere (the columns then read "–").
import { readFileSync } from 'node:fs'
import { closedLoop } from './load.ts'
import type { LoadResult, LoadSpec } from './types.ts'

const TICK_US = 10_000 // USER_HZ is 100 on every Linux the bench runs on

/** Microseconds of CPU `pid` has used so far (only its main thread with `mainThread`), or null when /proc cannot say. */
export function cpuMicros(pid: number | undefined, mainThread = false): number | null {
  if (pid === undefined) return null
  try {
    // Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * TICK_US
  } catch {
    return null
  }
}

export interface CpuPerRequest {
  /** The process, all threads (µs per request of the measured run, answered or refused). */
  readonly all: number | undefined
  /** Its main thread: the event loop. */
  readonly main: number | undefined
}

/**
 * A closed loop whose CPU cost is read around the measured run only: the warm-up runs
 * first as a run of its own, then `pids` are read before and after the measured run.
 */
export async function measuredClosedLoop(spec: LoadSpec, pids: readonly (number | undefined)[]): Promise<{ result: LoadResult; cpu: CpuPerRequest[] }> {
  if (spec.warmupS > 0) await closedLoop({ ...spec, durationS: spec.warmupS, warmupS: 0 })
  const read = () => pids.map((pid) => [cpuMicros(pid), cpuMicros(pid, true)] as const)
  const before = read()
  const result = await closedLoop({ ...spec, warmupS: 0 })
  const after = read()
  const per = (a: number | null, b: number | null) => (a === null || b === null || result.requests === 0 ? undefined : (b - a) / result.requests)
  return { result, cpu: before.map(([all, main], i) => ({ all: per(all, after[i]![0]), main: per(main, after[i]![1]) })) }
}
