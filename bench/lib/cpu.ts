// CPU time a process has used (user + system, all its threads), read from /proc: how the
// bench says what each request cost the gateway, and a record the broker, on shared cores.
// Linux only; null elsewhere (the columns then read "–").
import { readFileSync } from 'node:fs'

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
