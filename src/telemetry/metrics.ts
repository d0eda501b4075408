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
import type { EnsembleRuntime } from '../starter/ensemble.ts'
import { refusalsOf } from '../security/refusals.ts'
import { memberVersion } from '../starter/outcomes.ts'
import { BUDGET_FRACTION_BOUNDS, LATENCY_BOUNDS_MS, type LatencyHistogram, type ModelStats } from '../starter/stats.ts'
import type { MetricAttributes, MetricsSink, ModelStatus } from '../types.ts'
import type { RuntimeView } from './node-runtime.ts'
import { TRACER_NAME } from './tracing.ts'

const millisToHrTime = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)]

const SECONDS_BOUNDS = LATENCY_BOUNDS_MS.map((ms) => ms / 1000)
const MODEL_STATUSES: readonly ModelStatus[] = ['ok', 'error', 'timeout', 'cancelled', 'skipped']


const seconds = (h: LatencyHistogram, bounds: readonly number[] = SECONDS_BOUNDS): Histogram => ({
  buckets: { boundaries: bounds as number[], counts: h.coarseCounts() },
  count: h.count,
  sum: h.sum / 1000,
  ...(h.count ? { min: h.min / 1000, max: h.max / 1000 } : {}),
})

/** One collection's metrics. Components report into it as a MetricsSink: points under one name join one metric. */
class Batch implements MetricsSink {
  readonly metrics: MetricData[] = []
  private readonly byName = new Map<string, MetricData>()
  private readonly start: HrTime
  private readonly now: HrTime

  constructor(start: HrTime, now: HrTime) {
    this.start = start
    this.now = now
  }

  private point<T>(attributes: Attributes, value: T, start = this.start): DataPoint<T> {
    return { startTime: start, endTime: this.now, attributes, value }
  }

  /** Whole counts; with a `unit` (seconds, say), fractional values: a double over OTLP, whose int would cut them. */
  counter(name: string, description: string, points: readonly (readonly [Attributes | MetricAttributes, number, HrTime?])[], unit = ''): void {
    if (this.join(name, points)) return
    this.add({
      descriptor: { name, description, unit, valueType: unit ? ValueType.DOUBLE : ValueType.INT },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints: points.map(([a, v, s]) => this.point(a, v, s)),
    })
  }

  gauge(name: string, description: string, points: readonly (readonly [Attributes | MetricAttributes, number])[], unit = ''): void {
    if (this.join(name, points)) return
    this.add({
      descriptor: { name, description, unit, valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints: points.map(([a, v]) => this.point(a, v)),
    })
  }

  histogram(name: string, description: string, unit: string, points: [Attributes, Histogram, HrTime?][]): void {
    this.add({
      descriptor: { name, description, unit, valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: points.map(([a, v, s]) => this.point(a, v, s)),
    })
  }

  /** This batch as a sink whose counters started at `start` (a model's own counters). */
  since(start: HrTime): MetricsSink {
    return {
      gauge: (name, description, points, unit) => this.gauge(name, description, points, unit),
      counter: (name, description, points, unit) => this.counter(name, description, points.map(([a, v]) => [a, v, start] as const), unit),
    }
  }

  private add(metric: MetricData): void {
    this.metrics.push(metric)
    this.byName.set(metric.descriptor.name, metric)
  }

  /** Adds the points to an existing metric of that name; false when there is none yet. */
  private join(name: string, points: readonly (readonly [Attributes | MetricAttributes, number, HrTime?])[]): boolean {
    const metric = this.byName.get(name)
    if (!metric) return false
    for (const [a, v, s] of points) (metric.dataPoints as DataPoint<number>[]).push(this.point(a, v, s))
    return true
  }
}

/**
 * The outcomes a predict can end with, exported at 0 before their first one: a series that
 * appears only with its first count hides that first burst from `rate()` and `increase()`
 * (they need two samples), so the first errors of a kind would not fire an alert.
 */
const PREDICT_OUTCOMES: readonly string[] = ['ok', 'DEADLINE_EXCEEDED', 'ALL_MODELS_FAILED', 'CANCELLED', 'OVERLOADED']
/** Every predict's outcomes, and the strategy's own failures (a majority vote's NO_CONSENSUS). */
const outcomesOf = (ens: EnsembleRuntime): readonly string[] => {
  const extra = ens.strategy.failCodes?.filter((code) => !PREDICT_OUTCOMES.includes(code))
  return extra?.length ? [...PREDICT_OUTCOMES, ...extra] : PREDICT_OUTCOMES
}

/** Reads the gateway's current state (after a reload, the new one) at every collection. */
export class GatewayMetrics implements MetricProducer {
  private readonly gateway: Gateway
  private readonly runtime: RuntimeView | null
  private readonly started = millisToHrTime(Date.now())

  /** `runtime`: this reader's view of the event loop and the collector (node-runtime.ts). */
  constructor(gateway: Gateway, runtime: RuntimeView | null = null) {
    this.gateway = gateway
    this.runtime = runtime
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

  /**
   * Per ensemble, with its counters' own start time: they follow the ensemble across reloads,
   * and start again at 0 (a new start time) when a reload removed it and a later one adds it again.
   */
  private ensembleMetrics(b: Batch): void {
    const requests: [Attributes, number, HrTime][] = []
    const durations: [Attributes, Histogram, HrTime][] = []
    const deadline: [Attributes, number, HrTime][] = []
    const budget: [Attributes, Histogram, HrTime][] = []
    const started: [Attributes, number, HrTime][] = []
    for (const ens of this.gateway.ensembles.values()) {
      const s = ens.requestStats
      const since = millisToHrTime(Date.parse(s.since))
      const ensemble = { ensemble: ens.name }
      for (const outcome of outcomesOf(ens)) {
        if (!s.outcomes.has(outcome)) requests.push([{ ensemble: ens.name, outcome }, 0, since])
      }
      for (const [outcome, n] of s.outcomes) requests.push([{ ensemble: ens.name, outcome }, n, since])
      durations.push([ensemble, seconds(s.latency), since])
      deadline.push([ensemble, s.deadlineHits, since])
      started.push([ensemble, s.membersStarted, since])
      budget.push([ensemble, { buckets: { boundaries: [...BUDGET_FRACTION_BOUNDS], counts: [...s.budgetUsed] }, count: s.latency.count, sum: s.budgetUsedSum }, since])
    }
    b.counter('specserve_predict_requests', 'Predict requests by ensemble and outcome (ok or the error code; OVERLOADED includes requests shed at max_in_flight before they ran).', requests)
    b.histogram('specserve_predict_duration_seconds', 'Time from fan-out to decision, per ensemble.', 's', durations)
    b.counter('specserve_predict_deadline_reached', 'Predicts decided by the deadline timer rather than early by the collector.', deadline)
    b.counter('specserve_predict_members_started', 'Members started (not annotated skipped: held back by member selection, or refused by their executor before running), summed over predicts: over specserve_predict_requests, members started per request.', started)
    b.histogram('specserve_predict_budget_used_ratio', 'Elapsed time as a fraction of the effective budget (1 = the whole budget).', '1', budget)
    this.shadowMetrics(b)
  }

  /** Shadow members (`shadow:` on an ensemble): their runs by result, and their agreement with the answers given. */
  private shadowMetrics(b: Batch): void {
    const runs: [Attributes, number, HrTime][] = []
    const agreement: [Attributes, number][] = []
    for (const ens of this.gateway.ensembles.values()) {
      if (!ens.shadow) continue
      // Kept with the ensemble's counters: their start time.
      const since = millisToHrTime(Date.parse(ens.requestStats.since))
      for (const { model, counts } of ens.shadow.members) {
        const at = { ensemble: ens.name, model: model.name }
        // Each run counted once, as it ends (shadow.ts): none of these ever goes down.
        runs.push(
          [{ ...at, result: 'agreed' }, counts.agreed, since],
          [{ ...at, result: 'disagreed' }, counts.compared - counts.agreed, since],
          [{ ...at, result: 'uncompared' }, counts.uncompared, since],
          [{ ...at, result: 'error' }, counts.errors, since],
        )
        if (counts.compared > 0) agreement.push([at, counts.agreed / counts.compared])
      }
    }
    if (!runs.length) return
    b.counter('specserve_shadow_runs', 'Shadow member runs, each counted as it ends, by result: agreed or disagreed with the answer given, uncompared (nothing to compare), error.', runs)
    b.gauge('specserve_shadow_agreement_ratio', 'Share of a shadow member\'s compared answers that agreed with the answer given.', agreement)
  }

  private modelMetrics(b: Batch): void {
    const calls: [Attributes, number, HrTime][] = []
    const wins: [Attributes, number, HrTime][] = []
    const late: [Attributes, number, HrTime][] = []
    const durations: [Attributes, Histogram, HrTime][] = []
    const add = (name: string, version: string, s: ModelStats): void => {
      const since = millisToHrTime(Date.parse(s.since))
      const model = { model: name, version }
      const counts: Record<ModelStatus, number> = { ok: s.ok, error: s.errors, timeout: s.timeouts, cancelled: s.cancelled, skipped: s.skipped }
      for (const status of MODEL_STATUSES) calls.push([{ ...model, status }, counts[status], since])
      wins.push([model, s.wins, since])
      late.push([model, s.late, since])
      durations.push([model, seconds(s.latency), since])
    }
    for (const m of this.gateway.models.values()) {
      // The version its annotations name (a remote model's upstream version when YAML pins none).
      add(m.model.name, memberVersion(m.model, m.executor), m.stats)
      // A canary rollout: the canary's runs under its own version.
      const other = m.stats.otherVersion
      if (other) add(m.model.name, other.version, other.stats)
    }
    b.counter('specserve_model_calls', 'Model calls by final status (ok, error, timeout, cancelled, skipped).', calls)
    b.counter('specserve_model_wins', 'Predicts answered with this model\'s outputs.', wins)
    b.counter('specserve_model_late', 'Answers that arrived after the decision (never used).', late)
    b.histogram('specserve_model_duration_seconds', 'Duration of successful model calls.', 's', durations)
    // Kind-specific metrics (a remote model's circuit state) come from the executors themselves.
    // Their counters start with the model's runtime (a reload that replaces the model starts
    // them at 0): they carry its start time, so an OTLP consumer sees a reset, not a drop.
    for (const m of this.gateway.models.values()) m.executor.collect?.(b.since(millisToHrTime(Date.parse(m.stats.since))))
  }

  private runtimeMetrics(b: Batch): void {
    const g = this.gateway
    b.gauge('specserve_requests_in_flight', 'Predicts holding an admission slot now: running, or over REST still receiving their body (the limit is server.max_in_flight).', [[{}, g.admission.count]])
    b.gauge('specserve_ready', '1 when the gateway takes predicts; 0 while loading or draining.', [[{}, g.ready ? 1 : 0]])
    b.counter('specserve_config_reloads', 'Config reloads by result (applied or rejected).', [
      [{ result: 'applied' }, g.reloads.applied],
      [{ result: 'rejected' }, g.reloads.rejected],
    ])
    refusalsOf(g).collect(b)
    // What the executor kinds share (the ONNX pool) and what is attached (the Kafka sink, stream mode).
    for (const resource of g.resources.values()) resource.collect?.(b)
    for (const component of g.components.values()) component.collect?.(b)
    this.runtime?.collect(b)
  }
}
