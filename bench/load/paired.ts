// Paired sequential load (a child process of the bench): one request at a time, the N
// targets taking turns in short blocks (`block` requests to A, then to B, ..., the
// starting target rotating), each over its own keep-alive connection. Every target sees
// the same stretch of the run, so drift on a shared box (another tenant, a peer's
// garbage collector) lands on all of them alike and their difference is the path's own
// cost; within a block requests go back to back, as on a busy server. A target is an HTTP
// POST (undici) or a gRPC unary call (grpc-js), so a peer's own gRPC path can be the
// baseline of a gateway member that calls it over gRPC. Usage:
// node paired.ts '<PairedSpec JSON>'; prints one JSON line: { runs: LoadResult[] }.
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import * as grpc from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { Pool } from 'undici'
import { root } from '../lib/processes.ts'
import { closedLoopResult, Tally } from '../lib/tally.ts'
import type { PairedSpec, PairedTarget } from '../lib/types.ts'

const spec = JSON.parse(process.argv[2] ?? '{}') as PairedSpec

/** One request to a target; resolves with its status (HTTP code, or gRPC status name). */
interface Target {
  send(): Promise<string>
  close(): Promise<void>
}

function httpTarget(t: Extract<PairedTarget, { url: string }>): Target {
  const url = new URL(t.url)
  const pool = new Pool(url.origin, { connections: 1, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const headers = { 'content-type': 'application/json', ...t.headers }
  return {
    async send() {
      const res = await pool.request({ path: url.pathname, method: 'POST', headers, body: t.body })
      await res.body.dump()
      return String(res.statusCode)
    },
    close: () => pool.close(),
  }
}

function grpcTarget({ grpc: g }: Extract<PairedTarget, { grpc: unknown }>): Target {
  const def = loadSync(g.proto, { keepCase: true, longs: Number, defaults: true, includeDirs: [join(root, 'proto')] })
  const method = (def[g.service] as grpc.ServiceDefinition)[g.method]!
  const client = new grpc.Client(g.address, grpc.credentials.createInsecure())
  return {
    send: () =>
      new Promise((resolve) => {
        const deadline = Date.now() + 10_000
        client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, g.request, new grpc.Metadata(), { deadline }, (err) =>
          resolve(grpc.status[err ? err.code : grpc.status.OK] ?? 'UNKNOWN'),
        )
      }),
    close: () => Promise.resolve(client.close()),
  }
}

const targets = spec.targets.map((t): Target => ('grpc' in t ? grpcTarget(t) : httpTarget(t)))

async function once(target: (typeof targets)[number], tally: Tally): Promise<void> {
  const start = performance.now()
  try {
    const status = await target.send()
    const ms = performance.now() - start
    tally.statuses[status] = (tally.statuses[status] ?? 0) + 1
    if (status.startsWith('2') || status === 'OK') tally.latency.push(ms)
    else tally.errorLatency.push(ms)
  } catch {
    tally.errors++
  }
}

/** Rounds of one block per target, the starting target rotating, until `seconds` have passed. */
async function phase(seconds: number, tallies: readonly Tally[]): Promise<number> {
  const start = performance.now()
  const until = start + seconds * 1000
  const block = spec.block ?? 1
  for (let round = 0; performance.now() < until; round++) {
    for (let i = 0; i < targets.length; i++) {
      const k = (round + i) % targets.length
      for (let n = 0; n < block; n++) await once(targets[k]!, tallies[k]!)
    }
  }
  return (performance.now() - start) / 1000
}

if (spec.warmupS > 0) await phase(spec.warmupS, targets.map(() => new Tally()))
const tallies = targets.map(() => new Tally())
const elapsedS = await phase(spec.durationS, tallies)
await Promise.all(targets.map((t) => t.close()))

const tool = `bench/load/paired.ts (undici or grpc-js, 1 connection per target, ${targets.length} targets taking turns in blocks of ${spec.block ?? 1})`
const runs = tallies.map((tally) => closedLoopResult(tool, spec, tally, elapsedS))
process.stdout.write(`${JSON.stringify({ runs })}\n`)
