// Closed-loop load generator (a child process of the bench) on autocannon's API: each
// connection sends its next request as soon as the last one is answered, so throughput
// is the server's maximum at that concurrency. Latency comes from autocannon's own
// per-response timing, kept at full precision (its histogram rounds to whole ms).
// Usage: node closed-loop.ts '<LoadSpec JSON>'; prints a LoadResult as one JSON line.
import { createRequire } from 'node:module'
import { Samples } from '../lib/stats.ts'
import type { LoadResult, LoadSpec } from '../lib/types.ts'

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec

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
const { version } = require('autocannon/package.json') as { version: string }

function run(seconds: number, onResponse?: (status: number, ms: number) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: spec.method ?? 'POST',
        body: spec.body,
        headers: { 'content-type': 'application/json', ...spec.headers },
        connections: spec.connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    )
    if (onResponse) instance.on('response', (_client, status, _bytes, ms) => onResponse(status, ms))
  })
}

if (spec.warmupS > 0) await run(spec.warmupS)
const latency = new Samples()
const errorLatency = new Samples()
const statuses: Record<string, number> = {}
const result = await run(spec.durationS, (status, ms) => {
  statuses[status] = (statuses[status] ?? 0) + 1
  if (status >= 200 && status < 300) latency.push(ms)
  else errorLatency.push(ms)
})
const answered = Object.values(statuses).reduce((a, b) => a + b, 0)
const errors = result.errors + result.timeouts
const out: LoadResult = {
  tool: `autocannon ${version} (API, ${spec.connections} connections)`,
  loop: 'closed',
  connections: spec.connections,
  durationS: spec.durationS,
  warmupS: spec.warmupS,
  offeredRate: null,
  sentRate: (answered + errors) / result.duration,
  throughput: latency.length / result.duration,
  requests: answered + errors,
  statuses,
  errors,
  latency: latency.percentiles(),
  errorLatency: errorLatency.percentiles(),
}
process.stdout.write(`${JSON.stringify(out)}\n`)
