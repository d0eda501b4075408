// Closed-loop load generator (a child process of the bench) on autocannon's API: each
// connection sends its next request as soon as the last one is answered, so throughput
// is the server's maximum at that concurrency.
// Usage: node closed-loop.ts '<LoadSpec JSON>'; prints a LoadResult as one JSON line.
import { Tally, closedLoopResult } from '../lib/tally.ts'
import type { LoadSpec } from '../lib/types.ts'
import { runAutocannon, version } from './autocannon.ts'

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec

if (spec.warmupS > 0) await runAutocannon(spec, spec.warmupS)
const tally = new Tally()
const seconds = await runAutocannon(spec, spec.durationS, tally)
const tool = `autocannon ${version} (API, ${spec.connections} connections)`
process.stdout.write(`${JSON.stringify(closedLoopResult(tool, spec, tally, seconds, spec.connections))}\n`)
