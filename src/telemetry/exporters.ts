// Where and how each signal goes over OTLP: the endpoint (the standard variables the exporters
// read themselves, else the YAML) and the protocol, http/protobuf, http/json or grpc, from
// OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL over OTEL_EXPORTER_OTLP_PROTOCOL, as the
// OpenTelemetry spec has it. sdk-node loads all these exporters anyway: importing them costs nothing.
import { OTLPMetricExporter as GrpcMetrics } from '@opentelemetry/exporter-metrics-otlp-grpc'
import { OTLPMetricExporter as JsonMetrics } from '@opentelemetry/exporter-metrics-otlp-http'
import { OTLPMetricExporter as ProtobufMetrics } from '@opentelemetry/exporter-metrics-otlp-proto'
import { OTLPTraceExporter as GrpcTraces } from '@opentelemetry/exporter-trace-otlp-grpc'
import { OTLPTraceExporter as JsonTraces } from '@opentelemetry/exporter-trace-otlp-http'
import { OTLPTraceExporter as ProtobufTraces } from '@opentelemetry/exporter-trace-otlp-proto'
import type { metrics as sdkMetrics } from '@opentelemetry/sdk-node'
import type { SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { GatewayConfig } from '../config/load.ts'

export type Signal = 'traces' | 'metrics'

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number]

/** The spec's default, and what every OTLP/HTTP receiver takes: some take no JSON (docs/operations.md). */
export const DEFAULT_PROTOCOL: OtlpProtocol = 'http/protobuf'

export interface OtlpTarget {
  readonly enabled: boolean
  readonly protocol: OtlpProtocol
  /** The YAML endpoint made the signal's URL; undefined: the exporter reads the OTEL_* endpoint variables (set, they win). */
  readonly url?: string
}

/** An OTEL_* variable, undefined when unset or empty (as the SDK reads them). */
export const env = (name: string): string | undefined => process.env[name] || undefined

/**
 * The signal's protocol. A value that is not one is reported and ignored, as the spec says of
 * an enum it does not know: the general variable, then the default, apply.
 */
export function otlpProtocol(signal: Signal, warn: (message: string) => void): OtlpProtocol {
  for (const name of [`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`, 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const raw = env(name)
    if (raw === undefined) continue
    const value = raw.trim().toLowerCase()
    const known = OTLP_PROTOCOLS.find((protocol) => protocol === value)
    if (known) return known
    warn(`${name}=${JSON.stringify(raw)} is not an OTLP protocol (${OTLP_PROTOCOLS.join(', ')}): ignored`)
  }
  return DEFAULT_PROTOCOL
}

/**
 * Where OTLP goes: the standard variables (OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT, then
 * OTEL_EXPORTER_OTLP_ENDPOINT, read by the exporter itself), else the YAML endpoint: the
 * environment is the deploy's last word, the YAML its default. So is an explicit
 * OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER `none`: that signal's export is off whatever
 * the YAML says. Over HTTP `/v1/<signal>` is appended to the YAML endpoint; a gRPC endpoint
 * is the collector's address as it is.
 */
export function otlpTarget(settings: GatewayConfig['telemetry'], signal: Signal, warn: (message: string) => void): OtlpTarget {
  const off: OtlpTarget = { enabled: false, protocol: DEFAULT_PROTOCOL }
  const exporter = env(signal === 'traces' ? 'OTEL_TRACES_EXPORTER' : 'OTEL_METRICS_EXPORTER')
  if (exporter?.split(',').some((name) => name.trim().toLowerCase() === 'none')) return off
  // The exporter reads an endpoint set in the environment itself.
  if (env(`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`) !== undefined || env('OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined) {
    return { enabled: true, protocol: otlpProtocol(signal, warn) }
  }
  const configured = settings.otlp_endpoint || undefined
  if (!configured) return off
  const protocol = otlpProtocol(signal, warn)
  const base = configured.replace(/\/+$/, '')
  return { enabled: true, protocol, url: protocol === 'grpc' ? base : `${base}/v1/${signal}` }
}

export function spanExporter(target: OtlpTarget): SpanExporter {
  const options = target.url ? { url: target.url } : {}
  // The proto and gRPC exporters pin their own sdk-trace: the same classes at run time,
  // distinct declarations to the type checker, hence the casts.
  if (target.protocol === 'grpc') return new GrpcTraces(options) as unknown as SpanExporter
  if (target.protocol === 'http/json') return new JsonTraces(options)
  return new ProtobufTraces(options) as unknown as SpanExporter
}

export function metricExporter(target: OtlpTarget): sdkMetrics.PushMetricExporter {
  const options = target.url ? { url: target.url } : {}
  // As above, for sdk-metrics.
  if (target.protocol === 'grpc') return new GrpcMetrics(options) as unknown as sdkMetrics.PushMetricExporter
  if (target.protocol === 'http/json') return new JsonMetrics(options) as unknown as sdkMetrics.PushMetricExporter
  return new ProtobufMetrics(options) as unknown as sdkMetrics.PushMetricExporter
}
