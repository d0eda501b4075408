// V8 settings the gateway's process runs with, set once at its start (src/cli.ts).
//
// Allocation-site pretenuring: V8 counts, per place in the code that makes an object or
// array literal, how many of the objects made there since the last garbage collection
// were still alive at it, and from 85% on, has that place make its objects in the old
// generation from then on. A predict's objects live for microseconds, but one collection at
// the wrong moment (a burst of requests while the first ones compile) can tenure a place on
// the request path, and it stays so. Measured on this gateway under load (single model,
// autocannon, 32 connections, 2 cores): about four starts in ten tenured places in the
// request's parsing, its result and Node's own streams; from then on, each request's objects
// born there held what they point to (the request, its reply, its tensors) through every
// young collection, ~12 MB was promoted per collection (against ~0.2 MB), collections took
// 15-25 ms instead of ~1 ms, p99 rose from 6-7 ms to 17-20 ms and throughput fell 10-20%,
// for the life of the process. With it off, no start did (15 of 15, same load), at the same
// throughput as the good starts: every object starts young and short-lived ones die there.
import { setFlagsFromString } from 'node:v8'

export const NO_PRETENURING = '--no-allocation-site-pretenuring'
/** `node --allocation-site-pretenuring src/cli.ts …` keeps V8's default (to compare, or if a V8 ever needs it). */
export const KEEP_PRETENURING = '--allocation-site-pretenuring'

/**
 * Turns allocation-site pretenuring off for this process (every thread: V8's flags are the
 * process's), unless its command line asked for it. Before the first request: a place
 * already tenured stays so. Returns whether it was turned off.
 */
export function keepAllocationsYoung(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.includes(KEEP_PRETENURING)) return false
  setFlagsFromString(NO_PRETENURING)
  turnedOff = true
  return true
}

let turnedOff = false

/** Whether this process turned pretenuring off (V8 has no call that reads a flag back). */
export const pretenuringTurnedOff = (): boolean => turnedOff
