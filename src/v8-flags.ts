// V8 settings the gateway's process runs with, set once at its start (src/cli.ts), for every
// command.
//
// Allocation-site pretenuring: V8 counts, per place in the code that makes an object or
// array literal, how many of the objects made there since the last garbage collection
// were still alive at it, and from 85% on has that place make its objects in the old
// generation, until a full collection finds most of the old generation dead (which under
// steady load it does not). A predict's objects live for microseconds, but one collection
// at the wrong moment (a burst of requests while the first ones compile) can tenure a place
// on the request path. Measured on this gateway under load (one model, autocannon, 32
// connections, 2 cores): 11 starts in 34 tenured places in the request's parsing, its result
// and Node's own streams; from then on each request's objects born there held what they
// point to (the request, its reply, its tensors) through every young collection, ~12 MB was
// promoted per collection (against ~0.2 MB), collections took 15-25 ms instead of ~1 ms, p99
// rose from 6-7 ms to 17-20 ms and throughput fell 10-20%, for as long as the process ran.
// With it off, 15 starts in 15 ran like the good ones, at their throughput: every object
// starts young, and short-lived ones die there.
import { setFlagsFromString } from 'node:v8'

export const NO_PRETENURING = '--no-allocation-site-pretenuring'

/** The flag in any spelling V8 takes: `--[no-|no]allocation(-|_)site(-|_)pretenuring`. */
const PRETENURING_FLAG = /^--(no-?)?allocation[-_]site[-_]pretenuring$/

let off = false

/**
 * Turns allocation-site pretenuring off for this process (every thread: V8's flags are the
 * process's), unless node's command line already set it either way (`node
 * --allocation-site-pretenuring src/cli.ts …` keeps V8's default, to compare): the last
 * such flag is what V8 runs with, and it is left so. Before the first request: a place
 * already tenured stays so. Returns whether pretenuring is off.
 */
export function keepAllocationsYoung(execArgv: readonly string[] = process.execArgv): boolean {
  const given = execArgv.findLast((arg) => PRETENURING_FLAG.test(arg))
  if (given === undefined) setFlagsFromString(NO_PRETENURING)
  off = given === undefined || given.startsWith('--no')
  return off
}

/** Whether pretenuring is off in this process, as keepAllocationsYoung left it (V8 has no call that reads a flag back). */
export const pretenuringOff = (): boolean => off
