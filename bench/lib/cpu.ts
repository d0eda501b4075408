// CPU time a process has used (user + system, all its threads), read from /proc: how the
// bench says what each request cost the gateway, and a record the broker, on shared cores;
// and the share of the whole box left idle over a run (/proc/stat).
// Linux only; null elsewhere (the columns then read "–").
import { readFileSync } from 'node:fs'
import type { CpuPerRequest } from './types.ts'

const TICK_US = 10_000 // USER_HZ is 100 on every Linux the bench runs on

/** Microseconds of CPU `pid` has used so far (only its main thread with `mainThread`), or null when /proc cannot say. */
export function cpuMicros(pid: number | null | undefined, mainThread = false): number | null {
  if (pid == null) return null
  try {
    // Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * TICK_US
  } catch {
    return null
  }
}

/**
 * The whole box's CPU ticks so far, all cores: idle (idle and iowait), steal (time the
 * hypervisor ran something else on this machine's cores) and in all; null when /proc cannot say.
 */
export function boxTicks(): { readonly idle: number; readonly steal: number; readonly total: number } | null {
  try {
    // user nice system idle iowait irq softirq steal: guest time is counted in user and nice already.
    const ticks = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
    return { idle: (ticks[3] ?? 0) + (ticks[4] ?? 0), steal: ticks[7] ?? 0, total: ticks.reduce((a, b) => a + b, 0) }
  } catch {
    return null
  }
}

/** A process's CPU so far, all threads and its main thread, and the box's, to subtract from a later one. */
export interface CpuSample {
  readonly all: number | null
  readonly main: number | null
  readonly box?: ReturnType<typeof boxTicks>
}

/** Milliseconds the hypervisor took from the box's cores between two readings of boxTicks (all cores). */
export const stealMs = (before: ReturnType<typeof boxTicks>, after: ReturnType<typeof boxTicks>): number | null =>
  before && after ? ((after.steal - before.steal) * TICK_US) / 1000 : null

export const cpuSample = (pid: number | null | undefined): CpuSample => ({ all: cpuMicros(pid), main: cpuMicros(pid, true), box: boxTicks() })

/** CPU µs per request between two samples of one process; undefined where /proc could not say or nothing was sent. */
export function cpuPerRequest(before: CpuSample, after: CpuSample, requests: number): CpuPerRequest | undefined {
  if (!(requests > 0) || before.all === null) return undefined
  const per = (a: number | null, b: number | null): number | undefined => (a === null || b === null ? undefined : (b - a) / requests)
  const [b, a] = [before.box, after.box]
  const boxIdle = b && a && a.total > b.total ? (a.idle - b.idle) / (a.total - b.total) : undefined
  return { all: per(before.all, after.all), main: per(before.main, after.main), ...(boxIdle === undefined ? {} : { boxIdle }) }
}
