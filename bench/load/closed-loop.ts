// Closed-loop load generator (a child process of the bench) on autocannon's API: each
// connection sends its next request as soon as the last one is answered, so throughput
// is the server's maximum at that concurrency.
// Usage: node closed-loop.ts '<LoadSpec JSON>'; prints a LoadResult as one JSON line.
import { cpuPerRequest, cpuSample } from '../lib/cpu.ts'
import { Tally, closedLoopResult } from '../lib/tally.ts'
import type { LoadSpec } from '../lib/types.ts'
import { runAutocannon, version } from './autocannon.ts'

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec

if (spec.warmupS > 0) await runAutocannon(spec, spec.warmupS)
const tally = new Tally()
const before = cpuSample(spec.pid)
const seconds = await runAutocannon(spec, spec.durationS, tally)
const after = cpuSample(spec.pid)
const tool = `autocannon ${version} (API, ${spec.connections} connections)`
const result = closedLoopResult(tool, spec, tally, seconds, spec.connections)
process.stdout.write(`${JSON.stringify({ ...result, cpu: cpuPerRequest(before, after, result.requests) })}\n`)
