// The gateway's metrics, produced at collection time from the counters the starter keeps
// anyway (src/starter/stats.ts), so a predict pays for metrics with a few additions and
// no attribute hashing. Plugged into the OTel SDK as a MetricProducer: the Prometheus
// exporter (GET /metrics) and the OTLP reader export the same data. Catalogue: docs/operations.md.
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api'
import { emptyResource } from '@opentelemetry/resources'
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics'
import type { Gateway } from '../gateway.ts'
import { BUDGET_FRACTION_BOUNDS, LATENCY_BOUNDS_MS, type LatencyHistogram } from '../starter/stats.ts'
import type { ModelStatus } from '../types.ts'
import { TRACER_NAME } from './tracing.ts'

const millisToHrTime = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)]

const SECONDS_BOUNDS = LATENCY_BOUNDS_MS.map((ms) => ms / 1000)
const MODEL_STATUSES: readonly ModelStatus[] = ['ok', 'error', 'timeout', 'cancelled', 'skipped']

/** Circuit state as a number, so it can be graphed and alerted on (closed 0, half-open 1, open 2). */
export const CIRCUIT_STATE = { closed: 0, 'half-open': 1, open: 2 } as const

/** Remote executors (src/executors/remote) expose their circuit breaker; embedded ones have none. */
interface WithBreaker {
  readonly breaker?: { readonly state: keyof typeof CIRCUIT_STATE }
}

/** The part of the Kafka sink's status() the metrics read (see src/output). */
interface OutputStatus {
  readonly kafka?: { buffered?: number; spooled_records?: number; spool_bytes?: number; published?: number; dropped?: number }
}

const seconds = (h: LatencyHistogram, bounds: readonly number[] = SECONDS_BOUNDS): Histogram => ({
  buckets: { boundaries: bounds as number[], counts: h.coarseCounts() },
  count: h.count,
  sum: h.sum / 1000,
  ...(h.count ? { min: h.min / 1000, max: h.max / 1000 } : {}),
})

class Batch {
  readonly metrics: MetricData[] = []
  private readonly start: HrTime
  private readonly now: HrTime

  constructor(start: HrTime, now: HrTime) {
    this.start = start
    this.now = now
  }

  private point<T>(attributes: Attributes, value: T, start = this.start): DataPoint<T> {
    return { startTime: start, endTime: this.now, attributes, value }
  }

  counter(name: string, description: string, points: [Attributes, number, HrTime?][]): void {
    this.metrics.push({
      descriptor: { name, description, unit: '', valueType: ValueType.INT },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints: points.map(([a, v, s]) => this.point(a, v, s)),
    })
  }

  gauge(name: string, description: string, points: [Attributes, number][], unit = ''): void {
    this.metrics.push({
      descriptor: { name, description, unit, valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints: points.map(([a, v]) => this.point(a, v)),
    })
  }

  histogram(name: string, description: string, unit: string, points: [Attributes, Histogram, HrTime?][]): void {
    this.metrics.push({
      descriptor: { name, description, unit, valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: points.map(([a, v, s]) => this.point(a, v, s)),
    })
  }
}

/** Reads the gateway's current state (after a reload, the new one) at every collection. */
export class GatewayMetrics implements MetricProducer {
  private readonly gateway: Gateway
  private readonly started = millisToHrTime(Date.now())

  constructor(gateway: Gateway) {
    this.gateway = gateway
  }

  collect(): Promise<CollectionResult> {
    const b = new Batch(this.started, millisToHrTime(Date.now()))
    this.ensembleMetrics(b)
    this.modelMetrics(b)
    this.runtimeMetrics(b)
    return Promise.resolve({
      resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: { name: TRACER_NAME }, metrics: b.metrics }] },
      errors: [],
    })
  }

  private ensembleMetrics(b: Batch): void {
    const requests: [Attributes, number][] = []
    const durations: [Attributes, Histogram][] = []
    const deadline: [Attributes, number][] = []
    const budget: [Attributes, Histogram][] = []
    for (const ens of this.gateway.ensembles.values()) {
      const s = ens.requestStats
      const ensemble = { ensemble: ens.name }
      for (const [outcome, n] of s.outcomes) requests.push([{ ensemble: ens.name, outcome }, n])
      durations.push([ensemble, seconds(s.latency)])
      deadline.push([ensemble, s.deadlineHits])
      budget.push([ensemble, { buckets: { boundaries: [...BUDGET_FRACTION_BOUNDS], counts: [...s.budgetUsed] }, count: s.latency.count, sum: s.budgetUsedSum }])
    }
    b.counter('specserve_predict_requests', 'Predict requests that ran, by ensemble and outcome (ok or the error code).', requests)
    b.histogram('specserve_predict_duration_seconds', 'Time from fan-out to decision, per ensemble.', 's', durations)
    b.counter('specserve_predict_deadline_reached', 'Predicts decided by the deadline timer rather than early by the collector.', deadline)
    b.histogram('specserve_predict_budget_used_ratio', 'Elapsed time as a fraction of the effective budget (1 = the whole budget).', '1', budget)
  }

  private modelMetrics(b: Batch): void {
    const calls: [Attributes, number, HrTime][] = []
    const wins: [Attributes, number, HrTime][] = []
    const late: [Attributes, number, HrTime][] = []
    const durations: [Attributes, Histogram, HrTime][] = []
    const circuits: [Attributes, number][] = []
    for (const m of this.gateway.models.values()) {
      const s = m.stats
      const since = millisToHrTime(Date.parse(s.since))
      const model = { model: m.model.name, version: m.model.version }
      const counts: Record<ModelStatus, number> = { ok: s.ok, error: s.errors, timeout: s.timeouts, cancelled: s.cancelled, skipped: s.skipped }
      for (const status of MODEL_STATUSES) calls.push([{ ...model, status }, counts[status], since])
      wins.push([model, s.wins, since])
      late.push([model, s.late, since])
      durations.push([model, seconds(s.latency), since])
      const circuit = (m.executor as WithBreaker).breaker?.state
      if (circuit) circuits.push([{ model: m.model.name }, CIRCUIT_STATE[circuit]])
    }
    b.counter('specserve_model_calls', 'Model calls by final status (ok, error, timeout, cancelled, skipped).', calls)
    b.counter('specserve_model_wins', 'Predicts answered with this model\'s outputs.', wins)
    b.counter('specserve_model_late', 'Answers that arrived after the decision (never used).', late)
    b.histogram('specserve_model_duration_seconds', 'Duration of successful model calls.', 's', durations)
    if (circuits.length) b.gauge('specserve_circuit_breaker_state', 'Circuit breaker of a remote model: 0 closed, 1 half-open, 2 open.', circuits)
  }

  private runtimeMetrics(b: Batch): void {
    const g = this.gateway
    b.gauge('specserve_requests_in_flight', 'Predicts running now (the limit is server.max_in_flight).', [[{}, g.requestsInFlight]])
    b.gauge('specserve_ready', '1 when the gateway takes predicts; 0 while loading or draining.', [[{}, g.ready ? 1 : 0]])
    b.counter('specserve_config_reloads', 'Config reloads by result (applied or rejected).', [
      [{ result: 'applied' }, g.reloads.applied],
      [{ result: 'rejected' }, g.reloads.rejected],
    ])
    const pool = g.poolStats()
    if (pool) {
      b.gauge('specserve_onnx_workers', 'Inference worker threads.', [[{}, pool.workers]])
      b.gauge('specserve_onnx_workers_busy', 'Inference workers running a job now.', [[{}, pool.busy]])
      b.gauge('specserve_onnx_queue_depth', 'Inference jobs waiting for a worker (the limit is executors.onnx_queue).', [[{}, pool.queued]])
    }
    const output = g.statusDetails.get('output')?.() as OutputStatus | undefined
    const kafka = output?.kafka
    if (kafka) {
      b.gauge('specserve_output_buffered_records', 'Serving records waiting in memory for Kafka.', [[{}, kafka.buffered ?? 0]])
      b.gauge('specserve_output_spooled_records', 'Serving records in the local spool file (Kafka was unreachable).', [[{}, kafka.spooled_records ?? 0]])
      b.gauge('specserve_output_spool_bytes', 'Size of the local spool file.', [[{}, kafka.spool_bytes ?? 0]], 'By')
      b.counter('specserve_output_published_records', 'Serving records acknowledged by Kafka.', [[{}, kafka.published ?? 0]])
      b.counter('specserve_output_dropped_records', 'Serving records dropped (buffer and spool full).', [[{}, kafka.dropped ?? 0]])
    }
  }
}
