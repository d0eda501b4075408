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
import { defaultResource, detectResources, envDetector, hostDetector, processDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { metrics as sdkMetrics, NodeSDK } from '@opentelemetry/sdk-node'
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { FastifyPluginCallback } from 'fastify'
import { MAX_TIMER_MS } from '../timer-step.ts'
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
  /** Where a bad OTEL_* setting is reported (default: a process warning on stderr; the logger is not up yet). */
  readonly warn?: (message: string) => void
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

/** The path of a request URL: @fastify/otel asks about the URL as sent, query included (`/healthz?probe=1`). */
const untraced = (url: string): boolean => {
  const query = url.indexOf('?')
  return UNTRACED_ROUTES.has(query < 0 ? url : url.slice(0, query))
}

const env = (name: string): string | undefined => process.env[name] || undefined

/** The SDK's own reading of OTEL_SDK_DISABLED (trimmed, any case). */
const sdkDisabled = (): boolean => env('OTEL_SDK_DISABLED')?.trim().toLowerCase() === 'true'

/** An OTEL_* duration in ms; anything but a number from 1 to MAX_TIMER_MS is reported and replaced by the default. */
function millisFromEnv(name: string, fallback: number, warn: (message: string) => void): number {
  const raw = env(name)
  if (raw === undefined) return fallback
  const ms = Number(raw)
  if (raw.trim() !== '' && Number.isFinite(ms) && ms >= 1 && ms <= MAX_TIMER_MS) return ms
  warn(`${name}=${JSON.stringify(raw)} is not a number of milliseconds from 1 to ${MAX_TIMER_MS}: using the default, ${fallback}`)
  return fallback
}

const processWarning = (message: string): void => process.emitWarning(message, 'TelemetryWarning')

/**
 * Where OTLP goes: YAML first, then the standard variables (the exporters read those
 * themselves). An explicit OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER `none` turns that
 * signal's export off whatever the YAML says: the environment is the deploy's last word.
 */
function otlpTarget(settings: TelemetrySettings, signal: 'traces' | 'metrics'): { enabled: boolean; url?: string } {
  const exporter = env(signal === 'traces' ? 'OTEL_TRACES_EXPORTER' : 'OTEL_METRICS_EXPORTER')
  if (exporter?.split(',').some((name) => name.trim().toLowerCase() === 'none')) return { enabled: false }
  if (settings.otlp_endpoint) return { enabled: true, url: `${settings.otlp_endpoint.replace(/\/+$/, '')}/v1/${signal}` }
  const own = env(`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`)
  return { enabled: own !== undefined || env('OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined }
}

/**
 * With the SDK disabled (OTEL_SDK_DISABLED=true) NodeSDK starts nothing, and GET /metrics
 * would answer 200 with no metrics. The Prometheus endpoint is the gateway's own
 * (`telemetry.prometheus`), so it gets a meter provider of its own, with the resource the
 * SDK would have detected (target_info).
 */
function standaloneMeters(reader: MetricReader, settings: TelemetrySettings): sdkMetrics.MeterProvider {
  let resource = defaultResource().merge(detectResources({ detectors: [envDetector, processDetector, hostDetector] }))
  if (!env('OTEL_SERVICE_NAME')) resource = resource.merge(resourceFromAttributes({ 'service.name': settings.service_name }))
  return new sdkMetrics.MeterProvider({ resource, readers: [reader] })
}

export function startTelemetry(gateway: Gateway, settings: TelemetrySettings, options: TelemetryOptions = {}): Telemetry {
  const disabled = sdkDisabled()
  const warn = options.warn ?? processWarning
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
    // Read here, not by the SDK: a value Number() cannot read (`60s`) would export every 1 ms.
    const interval = millisFromEnv('OTEL_METRIC_EXPORT_INTERVAL', 60_000, warn)
    readers.push(
      new sdkMetrics.PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter(otlpMetrics.url ? { url: otlpMetrics.url } : {}) as unknown as sdkMetrics.PushMetricExporter,
        exportIntervalMillis: interval,
        // An export may not outlast the interval (the SDK refuses a longer one).
        exportTimeoutMillis: Math.min(millisFromEnv('OTEL_METRIC_EXPORT_TIMEOUT', 30_000, warn), interval),
        metricProducers: [producer],
      }),
    )
  }
  const ownMeters = disabled && prometheus ? standaloneMeters(prometheus as unknown as MetricReader, settings) : null

  const fastify = tracing ? new FastifyOtelInstrumentation({ ignorePaths: (route) => untraced(route.url) }) : null
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
        await Promise.all([sdk.shutdown(), ownMeters?.shutdown()])
      } finally {
        trace.disable()
        metrics.disable()
        propagation.disable()
        context.disable()
      }
    },
  }
}
