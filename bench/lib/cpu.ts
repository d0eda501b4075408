// CPU time a process has used (user + system, all its threads), read from /proc: how the
// bench says what each request cost the gateway, and a record the broker, on shared cores.
// Linux only; null elsewhere (the columns then read "–").
import { readFileSync } from 'node:fs'

const TICK_US = 10_000 // USER_HZ is 100 on every Linux the bench runs on

/** Microseconds of CPU `pid` has used so far, or null when /proc cannot say. */
export function cpuMicros(pid: number | undefined): number | null {
  if (pid === undefined) return null
  try {
    // Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * TICK_US
  } catch {
    return null
  }
}

/** Runs `load` and returns its result with the CPU `pid` used meanwhile (µs), null when unknown. */
export async function withCpu<T>(pid: number | undefined, load: () => Promise<T>): Promise<{ result: T; cpuUs: number | null }> {
  const before = cpuMicros(pid)
  const result = await load()
  const after = cpuMicros(pid)
  return { result, cpuUs: before === null || after === null ? null : after - before }
}
