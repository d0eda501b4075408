// OpenTelemetry for one gateway process, through the Node SDK. Tracing is on only when
// an OTLP endpoint is configured (YAML `telemetry.otlp_endpoint` or the standard
// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT variables); with it off, a predict checks one
// null and does nothing else. Metrics are produced from the gateway's own counters at
// collection time (./metrics.ts), for GET /metrics and, with an endpoint, OTLP.
import { context, metrics, propagation, trace } from '@opentelemetry/api'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { metrics as sdkMetrics, NodeSDK } from '@opentelemetry/sdk-node'
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { FastifyPluginCallback } from 'fastify'
import type { GatewayConfig } from '../config/load.ts'
import type { Gateway } from '../gateway.ts'
import { GatewayMetrics } from './metrics.ts'
import { setTracer, TRACER_NAME } from './tracing.ts'

export { traceHeaders, injectTrace, withTraceMetadata, withIncomingMetadata, activeTraceId, traceIdOf } from './tracing.ts'

type MetricReader = sdkMetrics.MetricReader

export type TelemetrySettings = GatewayConfig['telemetry']

export interface TelemetryOptions {
  /** Replace the OTLP span export (tests pass an in-memory exporter's processor); turns tracing on. */
  readonly spanProcessors?: SpanProcessor[]
}

export interface Telemetry {
  readonly tracing: boolean
  /** Serves GET /metrics on the REST port (null when `telemetry.prometheus: false`). */
  readonly prometheus: PrometheusExporter | null
  /** @fastify/otel's plugin (request spans, incoming traceparent); null when tracing is off. */
  fastifyPlugin(): FastifyPluginCallback | null
  /** Flushes pending spans and metrics, and unregisters the SDK's globals. */
  shutdown(): Promise<void>
}

/** Probes and scrapes: a span each would drown the predicts. */
const UNTRACED_ROUTES = new Set(['/metrics', '/healthz', '/readyz', '/v2/health/live', '/v2/health/ready'])

const env = (name: string): string | undefined => process.env[name] || undefined

/** Where OTLP goes: YAML first, then the standard variables (the exporters read those themselves). */
function otlpTarget(settings: TelemetrySettings, signal: 'traces' | 'metrics'): { enabled: boolean; url?: string } {
  if (settings.otlp_endpoint) return { enabled: true, url: `${settings.otlp_endpoint.replace(/\/+$/, '')}/v1/${signal}` }
  const own = env(`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`)
  const exporter = env(signal === 'traces' ? 'OTEL_TRACES_EXPORTER' : 'OTEL_METRICS_EXPORTER')
  return { enabled: exporter !== 'none' && (own !== undefined || env('OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined) }
}

export function startTelemetry(gateway: Gateway, settings: TelemetrySettings, options: TelemetryOptions = {}): Telemetry {
  const disabled = env('OTEL_SDK_DISABLED') === 'true'
  const producer = new GatewayMetrics(gateway)
  const traces = otlpTarget(settings, 'traces')
  const spanProcessors = options.spanProcessors ?? (traces.enabled && !disabled ? [new BatchSpanProcessor(new OTLPTraceExporter(traces.url ? { url: traces.url } : {}))] : [])
  const tracing = spanProcessors.length > 0

  const readers: MetricReader[] = []
  // The exporters pin their own copy of sdk-metrics: the same classes at run time, distinct
  // declarations to the type checker, hence the casts.
  const prometheus = settings.prometheus ? new PrometheusExporter({ preventServerStart: true, metricProducers: [producer], withoutScopeInfo: true }) : null
  if (prometheus) readers.push(prometheus as unknown as MetricReader)
  const otlpMetrics = otlpTarget(settings, 'metrics')
  if (otlpMetrics.enabled && !disabled) {
    readers.push(
      new sdkMetrics.PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter(otlpMetrics.url ? { url: otlpMetrics.url } : {}) as unknown as sdkMetrics.PushMetricExporter,
        exportIntervalMillis: Number(env('OTEL_METRIC_EXPORT_INTERVAL') ?? 60_000),
        metricProducers: [producer],
      }),
    )
  }

  const fastify = tracing ? new FastifyOtelInstrumentation({ ignorePaths: (route) => UNTRACED_ROUTES.has(route.url) }) : null
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME wins over the YAML (the SDK's env detector reads it).
    ...(env('OTEL_SERVICE_NAME') ? {} : { serviceName: settings.service_name }),
    spanProcessors,
    metricReaders: readers,
    logRecordProcessors: [], // pino writes logs; no OTLP log export
    instrumentations: fastify ? [fastify] : [],
    ...(settings.sample_ratio < 1 ? { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sample_ratio) }) } : {}),
  })
  if (tracing || readers.length) sdk.start()
  if (tracing) setTracer(trace.getTracer(TRACER_NAME))

  return {
    tracing,
    prometheus,
    fastifyPlugin: () => fastify?.plugin() ?? null,
    async shutdown() {
      setTracer(null)
      try {
        await sdk.shutdown()
      } finally {
        trace.disable()
        metrics.disable()
        propagation.disable()
        context.disable()
      }
    },
  }
}
