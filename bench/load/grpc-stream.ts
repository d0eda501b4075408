// gRPC closed loop with a grpc-js client (a child process of the bench), in two modes on
// one HTTP/2 connection and the same request bytes: `unary`, `concurrency` Predict calls
// in flight, each followed by the next as it is answered; `stream`, one PredictStream call
// with `concurrency` messages in flight, each reply followed by the next message. The same
// client for both, so the ratio between them is the server's per-call cost, not ghz's or
// Node's. Request bytes are encoded once by the parent (no protobuf work here); replies are
// only classified (a stream reply's outcome field, a unary call's status).
// Usage: node grpc-stream.ts '<GrpcLoadSpec JSON>'; prints a LoadResult as one JSON line.
import { createRequire } from 'node:module'
import * as grpc from '@grpc/grpc-js'
import { cpuPerRequest, cpuSample } from '../lib/cpu.ts'
import { closedLoopResult, Tally } from '../lib/tally.ts'

export interface GrpcLoadSpec {
  readonly target: string
  readonly mode: 'unary' | 'stream'
  /** A specserve.v1.PredictRequest, protobuf-encoded, base64. */
  readonly request: string
  readonly concurrency: number
  readonly durationS: number
  readonly warmupS: number
  /** The server process whose CPU per request the result gives (`cpu`). */
  readonly pid?: number
}

const spec = JSON.parse(process.argv[2] ?? '{}') as GrpcLoadSpec
const request = Buffer.from(spec.request, 'base64')
const identity = (b: Buffer): Buffer => b
const { version } = createRequire(import.meta.url)('@grpc/grpc-js/package.json') as { version: string }

const count = (t: Tally, status: string, ms: number): void => {
  t.statuses[status] = (t.statuses[status] ?? 0) + 1
  if (status === 'OK') t.latency.push(ms)
  else t.errorLatency.push(ms)
}

function unary(client: grpc.Client, seconds: number, t: Tally): Promise<void> {
  const until = performance.now() + seconds * 1000
  const worker = (): Promise<void> =>
    new Promise((resolve) => {
      const next = (): void => {
        if (performance.now() >= until) return resolve()
        const started = performance.now()
        client.makeUnaryRequest('/specserve.v1.Gateway/Predict', identity, identity, request, (err) => {
          count(t, err ? (grpc.status[err.code] ?? String(err.code)) : 'OK', performance.now() - started)
          next()
        })
      }
      next()
    })
  return Promise.all(Array.from({ length: spec.concurrency }, worker)).then(() => undefined)
}

/** A reply's outcome: field 1 (the id) first, then 2 (response) or 3 (error). */
function outcome(reply: Buffer): string {
  let at = 0
  if (reply[0] === 0x0a) at = 2 + (reply[1] as number)
  return reply[at] === 0x12 ? 'OK' : 'message error'
}

function stream(client: grpc.Client, seconds: number, t: Tally): Promise<void> {
  return new Promise((resolve, reject) => {
    const until = performance.now() + seconds * 1000
    const call = client.makeBidiStreamRequest('/specserve.v1.Gateway/PredictStream', identity, identity)
    const sentAt = new Map<string, number>()
    let seq = 0
    const send = (): void => {
      const id = `m${seq++}`
      // An id field appended to the encoded request: protobuf keeps the last one.
      const tail = Buffer.from([0x22, id.length, ...Buffer.from(id)])
      sentAt.set(id, performance.now())
      call.write(Buffer.concat([request, tail]))
    }
    call.on('data', (reply: Buffer) => {
      const id = reply[0] === 0x0a ? reply.toString('latin1', 2, 2 + (reply[1] as number)) : ''
      const started = sentAt.get(id)
      sentAt.delete(id)
      count(t, outcome(reply), started === undefined ? 0 : performance.now() - started)
      if (performance.now() < until) send()
      else if (sentAt.size === 0) call.end()
    })
    call.on('end', resolve)
    call.on('error', (err: grpc.ServiceError) => {
      t.errors++
      reject(err)
    })
    for (let i = 0; i < spec.concurrency; i++) send()
  })
}

const client = new grpc.Client(spec.target, grpc.credentials.createInsecure())
const load = spec.mode === 'stream' ? stream : unary
if (spec.warmupS > 0) await load(client, spec.warmupS, new Tally())
const tally = new Tally()
const before = cpuSample(spec.pid)
const started = performance.now()
await load(client, spec.durationS, tally)
const seconds = (performance.now() - started) / 1000
const after = cpuSample(spec.pid)
client.close()
const tool = `bench/load/grpc-stream.ts (grpc-js ${version}, ${spec.mode === 'stream' ? `one PredictStream, ${spec.concurrency} messages in flight` : `${spec.concurrency} unary calls in flight`}, 1 connection)`
const result = closedLoopResult(tool, spec, tally, seconds)
process.stdout.write(`${JSON.stringify({ ...result, cpu: cpuPerRequest(before, after, result.requests) })}\n`)
