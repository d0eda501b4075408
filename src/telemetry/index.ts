// OpenTelemetry for one gateway process, through the Node SDK. Tracing is on only when
// an OTLP endpoint is configured (YAML `telemetry.otlp_endpoint` or the standard
// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT variables); with it off, a predict checks one
// null and does nothing else. Metrics are produced from the gateway's own counters at
// collection time (./metrics.ts), for GET /metrics and, with an endpoint, OTLP.
import { context, diag, metrics, propagation, trace, type Span } from '@opentelemetry/api'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { metrics as sdkMetrics, NodeSDK } from '@opentelemetry/sdk-node'
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { ATTR_URL_PATH } from '@opentelemetry/semantic-conventions'
import type { FastifyPluginCallback } from 'fastify'
import { atMost } from '../at-most.ts'
import { MAX_TIMER_MS } from '../timer-step.ts'
import { pathOf } from '../url-path.ts'
import type { GatewayConfig } from '../config/load.ts'
import type { Gateway } from '../gateway.ts'
import { diagLevelFromEnv, DiagToLog, type DiagLog } from './diag.ts'
import { env, metricExporter, otlpTarget, spanExporter } from './exporters.ts'
import { GatewayMetrics } from './metrics.ts'
import { NodeRuntime } from './node-runtime.ts'
import { RESOURCE_DETECTORS, sdkResourceDetectors } from './resource.ts'
import { setTracer, TRACER_NAME } from './tracing.ts'

export { traceHeaders, withIncomingMetadata, activeTraceId, traceIdOf } from './tracing.ts'

type MetricReader = sdkMetrics.MetricReader

export type TelemetrySettings = GatewayConfig['telemetry']

export interface TelemetryOptions {
  /** Replace the OTLP span export (tests pass an in-memory exporter's processor); turns tracing on. */
  readonly spanProcessors?: SpanProcessor[]
  /** Where a bad OTEL_* setting is reported (default: a process warning on stderr). */
  readonly warn?: (message: string) => void
  /** Where OpenTelemetry's own diagnostics (failed exports, above all) are logged; without it, nowhere. */
  readonly log?: DiagLog
}

export interface Telemetry {
  readonly tracing: boolean
  /** Serves GET /metrics on the REST port (null when `telemetry.prometheus: false`). */
  readonly prometheus: PrometheusExporter | null
  /** Resolves once the resource's asynchronous attributes have settled: a scrape waits for it (settleResource). */
  resourceSettled(): Promise<void>
  /** @fastify/otel's plugin (request spans, incoming traceparent), to register before any route; null when tracing is off. */
  fastifyPlugin(): FastifyPluginCallback | null
  /** Flushes pending spans and metrics, and unregisters the SDK's globals. */
  shutdown(): Promise<void>
}

/** Probes and scrapes: a span each would drown the predicts. */
const UNTRACED_ROUTES = new Set(['/metrics', '/healthz', '/readyz', '/v2/health/live', '/v2/health/ready'])

/** The path of a request URL: @fastify/otel asks about the URL as sent, query included (`/healthz?probe=1`). */
const untraced = (url: string): boolean => UNTRACED_ROUTES.has(pathOf(url))

/**
 * `url.path` is the path alone (OpenTelemetry's HTTP conventions): @fastify/otel sets the URL as
 * sent, query included, which splits one path into a series per query and can carry a
 * credential someone put in a query string. The query is not recorded.
 */
const pathOnly = (span: Span, request: { readonly url: string }): void => {
  if (request.url.includes('?')) span.setAttribute(ATTR_URL_PATH, pathOf(request.url))
}

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
 * The YAML service name, unless the environment names the service (OTEL_SERVICE_NAME, or
 * `service.name` in OTEL_RESOURCE_ATTRIBUTES, read by the SDK's env detector): the environment
 * is the deploy's last word, over `telemetry.service_name` as over its default.
 */
function yamlServiceName(settings: TelemetrySettings): string | undefined {
  const named = detectResources({ detectors: [envDetector] }).attributes['service.name']
  return named === undefined ? settings.service_name : undefined
}

/** The samplers the SDK knows by OTEL_TRACES_SAMPLER (compared as it does, exactly). */
const ENV_SAMPLERS = new Set(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])

/**
 * `telemetry.sample_ratio`, unless OTEL_TRACES_SAMPLER names a sampler: the SDK then builds
 * it (with OTEL_TRACES_SAMPLER_ARG). One it does not know is reported, and the YAML ratio
 * applies, rather than the SDK's fallback of recording every trace.
 */
function yamlSampler(settings: TelemetrySettings, warn: (message: string) => void): ParentBasedSampler | undefined {
  const named = process.env.OTEL_TRACES_SAMPLER
  if (named !== undefined && named.trim() !== '') {
    if (ENV_SAMPLERS.has(named)) return undefined
    warn(`OTEL_TRACES_SAMPLER=${JSON.stringify(named)} is not one of ${[...ENV_SAMPLERS].join(', ')}: using telemetry.sample_ratio (${settings.sample_ratio})`)
  }
  return settings.sample_ratio < 1 ? new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sample_ratio) }) : undefined
}

/**
 * With the SDK disabled (OTEL_SDK_DISABLED=true) NodeSDK starts nothing, and GET /metrics
 * would answer 200 with no metrics. The Prometheus endpoint is the gateway's own
 * (`telemetry.prometheus`), so it gets a meter provider of its own, with the resource the
 * SDK would have detected (target_info).
 */
function standaloneMeters(reader: MetricReader, serviceName: string | undefined): sdkMetrics.MeterProvider {
  let resource = defaultResource().merge(detectResources({ detectors: [...RESOURCE_DETECTORS] }))
  if (serviceName !== undefined) resource = resource.merge(resourceFromAttributes({ 'service.name': serviceName }))
  return new sdkMetrics.MeterProvider({ resource, readers: [reader] })
}

const RESOURCE_SETTLE_MS = 2000

/**
 * Waits for the resource attributes that detectors read asynchronously (host.id, when
 * OTEL_NODE_RESOURCE_DETECTORS asks for the SDK's host detector: ours withholds it). The OTLP
 * readers wait for them before an export, but the Prometheus exporter reads them at every
 * scrape for target_info, and while they are pending the SDK logs an error each time and
 * leaves them out; nothing else would ever settle them when no OTLP reader runs.
 */
async function settleResource(reader: PrometheusExporter): Promise<void> {
  try {
    const { resourceMetrics } = await reader.collect()
    await resourceMetrics.resource.waitForAsyncAttributes?.()
  } catch {
    // A collection that fails here fails at a scrape too, and is answered there.
  }
}

export function startTelemetry(gateway: Gateway, settings: TelemetrySettings, options: TelemetryOptions = {}): Telemetry {
  const disabled = sdkDisabled()
  // Once each: a variable read for both signals (OTEL_EXPORTER_OTLP_PROTOCOL) is one mistake.
  const warned = new Set<string>()
  const report = options.warn ?? processWarning
  const warn = (message: string): void => {
    if (warned.has(message)) return
    warned.add(message)
    report(message)
  }
  // First: what the exporters and the resource detectors report while being built is logged too.
  const diagnostics = options.log ? new DiagToLog(options.log) : null
  const diagLevel = diagnostics ? diagLevelFromEnv(env('OTEL_LOG_LEVEL'), warn) : undefined
  if (diagnostics) diag.setLogger(diagnostics, { logLevel: diagLevel, suppressOverrideMessage: true })
  const serviceName = yamlServiceName(settings)
  const traces = otlpTarget(settings, 'traces', warn)
  const otlpMetrics = otlpTarget(settings, 'metrics', warn)
  const exportsMetrics = otlpMetrics.enabled && !disabled
  // The event loop's delay and the GC's pauses are sampled only when some reader will read them
  // (from once the SDK is built: a failed build leaves nothing running); each reader has its
  // own producer, whose view of them runs from its own previous collection.
  const runtime = settings.prometheus || exportsMetrics ? new NodeRuntime() : null
  const producer = () => new GatewayMetrics(gateway, runtime?.view() ?? null)
  const spanProcessors = options.spanProcessors ?? (traces.enabled && !disabled ? [new BatchSpanProcessor(spanExporter(traces))] : [])
  const tracing = spanProcessors.length > 0

  const readers: MetricReader[] = []
  // The exporters pin their own copy of sdk-metrics: the same classes at run time, distinct
  // declarations to the type checker, hence the casts.
  const prometheus = settings.prometheus ? new PrometheusExporter({ preventServerStart: true, metricProducers: [producer()], withoutScopeInfo: true }) : null
  if (prometheus) readers.push(prometheus as unknown as MetricReader)
  if (exportsMetrics) {
    // Read here, not by the SDK: a value Number() cannot read (`60s`) would export every 1 ms.
    const interval = millisFromEnv('OTEL_METRIC_EXPORT_INTERVAL', 60_000, warn)
    readers.push(
      new sdkMetrics.PeriodicExportingMetricReader({
        exporter: metricExporter(otlpMetrics),
        exportIntervalMillis: interval,
        // An export may not outlast the interval (the SDK refuses a longer one).
        exportTimeoutMillis: Math.min(millisFromEnv('OTEL_METRIC_EXPORT_TIMEOUT', 30_000, warn), interval),
        metricProducers: [producer()],
      }),
    )
  }
  const ownMeters = disabled && prometheus ? standaloneMeters(prometheus as unknown as MetricReader, serviceName) : null

  const fastify = tracing ? new FastifyOtelInstrumentation({
        ignorePaths: (route) => untraced(route.url),
        requestHook: pathOnly,
        // One span per request: a child per hook and per handler would cost each request more spans than its predict has.
        instrumentHooks: false,
        instrumentHandler: false,
      }) : null
  const sampler = tracing ? yamlSampler(settings, warn) : undefined
  // With OTEL_LOG_LEVEL set, NodeSDK's constructor puts a console logger in diag's place (raw
  // lines on stdout, the log's stream, whatever LOG_LEVEL says): it does not see the variable
  // while ours is in place (OTEL_LOG_LEVEL is read above, for ours).
  const logLevel = diagnostics ? process.env.OTEL_LOG_LEVEL : undefined
  if (logLevel !== undefined) delete process.env.OTEL_LOG_LEVEL
  const resourceDetectors = sdkResourceDetectors()
  let sdk: NodeSDK
  try {
    sdk = new NodeSDK({
      ...(serviceName !== undefined && { serviceName }),
      // Without the command line, the user, paths and the machine id (resource.ts): target_info is shown to any caller allowed `metrics`.
      ...(resourceDetectors && { resourceDetectors }),
      spanProcessors,
      metricReaders: readers,
      logRecordProcessors: [], // pino writes logs; no OTLP log export
      instrumentations: fastify ? [fastify] : [],
      ...(sampler && { sampler }),
    })
  } finally {
    if (logLevel !== undefined) process.env.OTEL_LOG_LEVEL = logLevel
  }
  if (tracing || readers.length) sdk.start()
  runtime?.start()
  if (tracing) setTracer(trace.getTracer(TRACER_NAME))
  // A detector that hangs (an `exec` on some platforms) must not hang every scrape: 2 s at most, then scrapes go on (and the SDK says what is missing).
  const settled = prometheus ? atMost(settleResource(prometheus), RESOURCE_SETTLE_MS) : Promise.resolve()

  return {
    tracing,
    prometheus,
    resourceSettled: () => settled,
    fastifyPlugin: () => fastify?.plugin() ?? null,
    async shutdown() {
      setTracer(null)
      runtime?.close()
      try {
        await Promise.all([sdk.shutdown(), ownMeters?.shutdown()])
      } finally {
        trace.disable()
        metrics.disable()
        propagation.disable()
        context.disable()
        if (diagnostics) diag.disable()
      }
    },
  }
}
