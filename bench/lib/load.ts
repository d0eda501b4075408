// Runs one load run in a child process and returns what it measured: autocannon (closed
// loop), our open-loop sender (fixed rate), or ghz for gRPC.
import { join } from 'node:path'
import { cpuPerRequest, cpuSample } from './cpu.ts'
import { percentiles } from './stats.ts'
import { nodeScript, root, run } from './processes.ts'
import type { GrpcLoadSpec } from '../load/grpc-stream.ts'
import type { InterleavedRun, InterleavedSpec, LoadResult, LoadSpec, OpenInterleavedSpec, PairedSpec } from './types.ts'

async function child<T = LoadResult>(script: string, spec: LoadSpec | PairedSpec | InterleavedSpec | OpenInterleavedSpec | GrpcLoadSpec): Promise<T> {
  const stdout = await run(process.execPath, nodeScript(join(root, 'bench', 'load', script), JSON.stringify(spec)))
  const last = stdout.trim().split('\n').pop() ?? ''
  return JSON.parse(last) as T
}

/** Each connection sends as soon as it has its answer: the server's maximum throughput. */
export const closedLoop = (spec: LoadSpec): Promise<LoadResult> => child('closed-loop.ts', spec)

/**
 * Closed loops on several targets taking turns in slices over the same stretch of time:
 * one result per target, in order, each with the CPU per request of its `pids`.
 */
export const interleavedClosedLoop = async (spec: InterleavedSpec): Promise<readonly InterleavedRun[]> => (await child<{ runs: InterleavedRun[] }>('interleaved.ts', spec)).runs

/** One request at a time, the targets taking turns: one result per target, in order. */
export const pairedSequential = async (spec: PairedSpec): Promise<readonly LoadResult[]> => (await child<{ runs: LoadResult[] }>('paired.ts', spec)).runs

/** Fixed rate whatever the server does; latency from the scheduled start. */
export const openLoop = (spec: LoadSpec & { rate: number }): Promise<LoadResult> => child('open-loop.ts', spec)

/**
 * Open loops at one rate on several targets taking turns in slices over the same stretch of
 * time: one result per target, in order, each with its slices' p99s (sliceP99).
 */
export const interleavedOpenLoop = async (spec: OpenInterleavedSpec): Promise<readonly LoadResult[]> => (await child<{ runs: LoadResult[] }>('open-loop.ts', spec)).runs

/** gRPC closed loop with a grpc-js client: unary Predict calls, or messages on one PredictStream (bench/load/grpc-stream.ts). */
export const grpcClosedLoop = (spec: GrpcLoadSpec): Promise<LoadResult> => child('grpc-stream.ts', spec)

export interface GhzSpec {
  readonly ghz: string
  /** Shown in the results, e.g. v0.120.0 (a go-installed ghz reports "dev" itself). */
  readonly version: string
  readonly target: string
  readonly call: string
  readonly proto: string
  readonly data: unknown
  readonly concurrency: number
  readonly durationS: number
  readonly warmupS: number
  /** TLS, verifying the server against this CA certificate (PEM file); plaintext without it. */
  readonly caFile?: string
  /** Call metadata (an authorization header, say). */
  readonly metadata?: Readonly<Record<string, string>>
  /** The server process whose CPU per request the result gives (`cpu`). */
  readonly pid?: number
}

interface GhzReport {
  count: number
  total: number
  rps: number
  statusCodeDistribution?: Record<string, number>
  errorDistribution?: Record<string, number>
  details?: { latency: number; status: string }[]
}

/** ghz closed loop: `concurrency` workers over one HTTP/2 connection (how gRPC clients talk). */
export async function ghzClosedLoop(spec: GhzSpec): Promise<LoadResult> {
  const args = (seconds: number): string[] => [
    ...(spec.caFile ? ['--cacert', spec.caFile] : ['--insecure']),
    ...(spec.metadata ? ['-m', JSON.stringify(spec.metadata)] : []),
    '--proto', join(root, spec.proto),
    '-i', join(root, 'proto'),
    '--call', spec.call,
    '-d', JSON.stringify(spec.data),
    '-c', String(spec.concurrency),
    '-z', `${seconds}s`,
    // One core, as autocannon (one JavaScript thread) takes: Go would spread ghz over every
    // core of a box the gateway shares, and the gRPC rows would give the gateway less CPU than
    // the REST rows they are compared with.
    '--cpus', '1',
    // The call data is sent as given: ghz otherwise renders it as a Go template for every call,
    // which halved its rate against a server answering at once (bench/peers/null-grpc.ts).
    '--disable-template-functions',
    '--disable-template-data',
    '-O', 'json',
    spec.target,
  ]
  if (spec.warmupS > 0) await run(spec.ghz, args(spec.warmupS))
  const before = cpuSample(spec.pid)
  const output = await run(spec.ghz, args(spec.durationS))
  const after = cpuSample(spec.pid)
  const report = JSON.parse(output) as GhzReport
  const ok: number[] = []
  for (const d of report.details ?? []) if (d.status === 'OK') ok.push(d.latency / 1e6)
  const statuses = report.statusCodeDistribution ?? {}
  const errors = Object.values(report.errorDistribution ?? {}).reduce((a, b) => a + b, 0)
  const seconds = report.total / 1e9
  return {
    tool: `ghz ${spec.version} (${spec.concurrency} workers, 1 connection, 1 core)`,
    loop: 'closed',
    connections: 1,
    durationS: spec.durationS,
    warmupS: spec.warmupS,
    offeredRate: null,
    sentRate: report.count / seconds,
    throughput: ok.length / seconds,
    requests: report.count,
    statuses,
    errors,
    latency: percentiles(ok),
    cpu: cpuPerRequest(before, after, report.count),
  }
}
