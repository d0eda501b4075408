// autocannon's API as the closed-loop children use it: one run of a target for some
// seconds, its responses counted into a tally that several runs of one target can share.
// Latency comes from autocannon's own per-response timing, kept at full precision (its
// histogram rounds to whole ms).
import { createRequire } from 'node:module'
import type { Tally } from '../lib/tally.ts'
import type { LoadTarget } from '../lib/types.ts'

interface Instance {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void
}
interface Result {
  errors: number
  timeouts: number
  duration: number
}
type Autocannon = (options: Record<string, unknown>, done: (err: Error | null, result: Result) => void) => Instance

// autocannon ships no type declarations: load it through require with the little we use typed above.
const require = createRequire(import.meta.url)
const autocannon = require('autocannon') as Autocannon
export const { version } = require('autocannon/package.json') as { version: string }

/**
 * One closed-loop run of `target` for `seconds`. With a tally, its responses are counted
 * there and the seconds autocannon measured are returned; a warm-up passes none.
 */
export function runAutocannon(target: LoadTarget, seconds: number, tally?: Tally): Promise<number> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        method: target.method ?? 'POST',
        body: target.body,
        headers: { 'content-type': 'application/json', ...target.headers },
        connections: target.connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
      },
      (err, result) => {
        if (err) return reject(err)
        if (tally) tally.errors += result.errors + result.timeouts
        resolve(result.duration)
      },
    )
    if (tally)
      instance.on('response', (_client, status, _bytes, ms) => {
        tally.statuses[status] = (tally.statuses[status] ?? 0) + 1
        if (status >= 200 && status < 300) tally.latency.push(ms)
        else tally.errorLatency.push(ms)
      })
  })
}
