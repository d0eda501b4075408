// When a process started, as wall-clock time: a lock naming a pid whose process started after
// the lock was taken is not that process's, though the pid is running (the pid was reused: after
// a reboot, or a container's pid 1 restarted in the same pod, keeping its hostname). Linux says
// it in /proc; elsewhere (or where /proc does not say) the start is unknown and the caller
// falls back to "running is live".
import { readFileSync } from 'node:fs'

/**
 * This process's start (ms since the epoch), computed once, as the module loads: a fake clock a
 * test installs later does not move it. process.uptime() is the process's, in a worker thread too.
 */
export const OWN_START_MS = Date.now() - process.uptime() * 1000

/**
 * /proc/<pid>/stat counts a start in clock ticks since boot, USER_HZ (`getconf CLK_TCK`) a
 * second: 100 on every architecture Node runs on. It is assumed, not asked (asking spawns a
 * process); the check against this process's own start in bootMs() catches a wrong one.
 */
const TICKS_PER_S = 100
/** How far /proc may put this process's start from where Node does and still be trusted: btime is whole seconds, and a fork precedes Node's own start. */
const AGREE_MS = 2_000

/** Boot time (ms since the epoch): undefined before it is read, null where /proc is not trusted. */
let bootMs: number | null | undefined

/** When process `pid` started (ms since the epoch); undefined where that is not known (not Linux, /proc hidden, no such process). */
export function processStart(pid: number): number | undefined {
  if (pid === process.pid) return OWN_START_MS
  const boot = bootTime()
  const ticks = boot === undefined ? undefined : startTicks(pid)
  return boot === undefined || ticks === undefined ? undefined : boot + (ticks * 1000) / TICKS_PER_S
}

/** Field 22 of /proc/<pid>/stat, starttime: ticks from boot to the process's start. */
function startTicks(pid: number | 'self'): number | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // Field 2, the command's name, is in parentheses and may hold spaces and ')': fields are counted from the last ')', field 3 first.
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3])
  return Number.isSafeInteger(ticks) && ticks >= 0 ? ticks : undefined
}

/** /proc/stat's btime, read once and trusted only if it puts this process's start where Node does (a tick rate not 100, a time namespace: /proc is not used). */
function bootTime(): number | undefined {
  if (bootMs === undefined) {
    bootMs = null
    try {
      const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]) * 1000
      const self = startTicks('self')
      if (Number.isFinite(boot) && self !== undefined && Math.abs(boot + (self * 1000) / TICKS_PER_S - OWN_START_MS) < AGREE_MS) bootMs = boot
    } catch {
      // no /proc: the start of another process is not known here
    }
  }
  return bootMs ?? undefined
}
