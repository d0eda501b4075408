// Shapes shared by the bench orchestrator, its load-generator child processes and the report.
import type { SliceRuntime } from './gateway-runtime.ts'
import type { Percentiles, Summary } from './stats.ts'

/** What a load-generator child is asked to do (passed as JSON in argv). */
export interface LoadSpec {
  readonly url: string
  readonly method?: 'POST' | 'GET'
  readonly body?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly connections: number
  readonly durationS: number
  readonly warmupS: number
  /** Open loop only: requests started per second, whatever the responses do. */
  readonly rate?: number
  /** Open loop only: a response later than this (ms from its scheduled start) is a deadline miss. */
  readonly missAfterMs?: number
  /** Open loop only: read `elapsed_ms` and `decision.chosen` from each 2xx body. */
  readonly readBodies?: boolean
  /** Closed loop: the server process whose CPU per request the result gives (`cpu`). */
  readonly pid?: number
}

/** Paired sequential load: one request at a time, taking turns between the targets (bench/load/paired.ts). */
/** A POST over HTTP/1.1 (undici), or a gRPC unary call (grpc-js, a message from one of our .proto files). */
export type PairedTarget =
  | { readonly url: string; readonly body: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly grpc: { readonly address: string; readonly proto: string; readonly service: string; readonly method: string; readonly request: unknown } }

export interface PairedSpec {
  readonly targets: readonly PairedTarget[]
  /** Requests sent back to back to one target before the next takes its turn (default 1). */
  readonly block?: number
  readonly durationS: number
  readonly warmupS: number
}

/**
 * Closed loops on several targets taking turns over the same stretch of time
 * (bench/load/interleaved.ts): each target `durationS` in all, in slices of `sliceS`.
 */
export interface InterleavedSpec {
  readonly targets: readonly InterleavedTarget[]
  readonly durationS: number
  readonly warmupS: number
  readonly sliceS: number
}

/**
 * Open loops on several targets taking turns at one rate (bench/load/open-loop.ts): each
 * target `durationS` measured in all, in slices of `sliceS` each after LEAD_IN_S not measured
 * (open-tally.ts), on `connections` of its own.
 */
export interface OpenInterleavedSpec {
  /** `metricsUrl`: a specserve gateway's /metrics, scraped at each slice's start and end (its event loop and GC in the slice). */
  readonly targets: readonly (Pick<LoadSpec, 'url' | 'method' | 'body' | 'headers'> & { readonly metricsUrl?: string })[]
  readonly rate: number
  readonly connections: number
  readonly durationS: number
  readonly warmupS: number
  readonly sliceS: number
}

/** What a closed loop sends: each request, and how many connections send them. */
export type LoadTarget = Pick<LoadSpec, 'url' | 'method' | 'body' | 'headers' | 'connections'>

/**
 * A request a target sends at the start of each of its measured slices, beside its load,
 * and waits for before the next target's turn (a new model version uploaded): what the
 * target measures is the load while that happens. `{n}` in the URL is a counter from
 * `first`; the body is the file; `status` is the answer that counts as done.
 */
export interface SliceAction {
  readonly url: string
  readonly method: 'PUT' | 'POST'
  readonly file: string
  readonly first: number
  readonly status: number
}

/** The slice actions' answers. */
export interface SliceActionResults {
  /** ms from sent to answered, for each answered with the expected status. */
  readonly okMs: number[]
  /** What went wrong with the others. */
  readonly failed: string[]
  /** How many were still unanswered when their slice's load ended (the rest of their work ran under no load). */
  outlasted: number
}

/**
 * A closed-loop target and the processes whose CPU its requests are charged (/proc, around
 * its own slices). A pid not known is left undefined; it reaches the child as null (JSON).
 */
export type InterleavedTarget = LoadTarget & { readonly pids?: readonly (number | null | undefined)[]; readonly eachSlice?: SliceAction }

/** One target's share of an interleaved run: its load, its CPU per request (per pid), its slice actions' answers. */
export interface InterleavedRun {
  readonly result: LoadResult
  readonly cpu: CpuPerRequest[]
  readonly actions?: SliceActionResults
}

/** CPU time per request of one process (µs, the measured runs only), and the box's idle share over them; undefined where /proc cannot say. */
export interface CpuPerRequest {
  /** The process, all threads (answered or refused requests). */
  readonly all: number | undefined
  /** Its main thread: the event loop. */
  readonly main: number | undefined
  /** The share of the whole box's CPU time (every core) left idle over the run: what neither side of the load used. */
  readonly boxIdle?: number
}

/** One load run, as recorded in docs/bench/results.json. Latencies in ms. */
export interface LoadResult {
  readonly tool: string
  readonly loop: 'closed' | 'open'
  readonly connections: number
  readonly durationS: number
  readonly warmupS: number
  readonly offeredRate: number | null
  /** Requests actually started per second (open loop: shows whether the generator kept up). */
  readonly sentRate: number
  /** 2xx responses per second. */
  readonly throughput: number
  readonly requests: number
  readonly statuses: Readonly<Record<string, number>>
  /** Connection errors and client timeouts. */
  readonly errors: number
  /** 2xx latency; open loop: from the scheduled start (no coordinated omission). */
  readonly latency: Percentiles | null
  /** Open loop: 2xx latency from the moment the request was actually written. */
  readonly sendLatency?: Percentiles | null
  /** Non-2xx latency (e.g. fast 503s under overload). */
  readonly errorLatency?: Percentiles | null
  /** Open loop: non-2xx latency from the moment the request was actually written. */
  readonly errorSendLatency?: Percentiles | null
  /** Open loop with missAfterMs: fraction of all started requests answered later than it, not answered 2xx, or never answered. */
  readonly missRate?: number
  /** readBodies: the gateway's own elapsed_ms over 2xx bodies. */
  readonly serverElapsed?: Percentiles | null
  /** readBodies and missAfterMs: fraction of all requests not answered 2xx, or answered 2xx with elapsed_ms over missAfterMs. */
  readonly serverMissRate?: number
  /** The spec's `pid`: its CPU per request (answered or refused) over the measured run, apart from the warm-up. */
  readonly cpu?: CpuPerRequest
  /** readBodies: how many 2xx answers each model gave (decision.chosen). */
  readonly chosen?: Readonly<Record<string, number>>
  /** Interleaved open loop: the 2xx p99 of each of its slices, in round order (null: no 2xx in it). */
  readonly sliceP99?: readonly (number | null)[]
  /** Interleaved open loop: what the box and the server did in each slice, in the same order. */
  readonly slices?: readonly SliceReading[]
}

/** One slice of an interleaved open loop, besides its latencies. */
export interface SliceReading {
  /** The longest an idle thread of the load generator waited past its timer, ms: the box's own stalls (bench/load/stall-probe.ts). */
  readonly probeMs: number | null
  /** CPU time the hypervisor took from the box's cores, ms (all cores; null off Linux). */
  readonly stealMs: number | null
  /** A target with a metricsUrl (a specserve gateway): its event loop and GC in the slice (null: its /metrics did not say). */
  readonly runtime?: SliceRuntime | null
}

export interface Machine {
  readonly cores: number
  readonly cpu: string
  readonly node: string
  readonly platform: string
  readonly loadAverage: readonly number[]
  /** Load average when the last scenario finished (other work on the box shows here). */
  readonly loadAverageEnd?: readonly number[]
  readonly date: string
}

export interface Target {
  readonly description: string
  readonly metric: string
  readonly threshold: number
  readonly comparison: '>=' | '<='
  readonly value: number | null
  readonly met: boolean | null
  /** Set when missed or not measured: the measured cause and what would close the gap, or why there is no value. */
  readonly why?: string
  /** Which repetition `value` is: the median (when absent), or the worst one (a target that allows no failure at all). */
  readonly statistic?: 'worst'
}

/** One row of a scenario table: one server/config, every metric over the repetitions. */
export interface Variant {
  readonly name: string
  readonly description: string
  readonly metrics: Readonly<Record<string, Summary | null>>
  readonly runs: readonly LoadResult[]
}

export interface ScenarioResult {
  readonly id: string
  readonly title: string
  readonly status: 'ok' | 'not run'
  readonly reason?: string
  /** What every ratio in this scenario is relative to. */
  readonly baseline?: string
  readonly variants: readonly Variant[]
  readonly targets: readonly Target[]
  readonly notes: readonly string[]
}

export interface BenchResults {
  readonly quick: boolean
  readonly machine: Machine
  readonly settings: { readonly repetitions: number; readonly warmupS: number; readonly durationS: number; readonly sliceS?: number; readonly connections: number }
  readonly scenarios: readonly ScenarioResult[]
  readonly profile?: unknown
}
