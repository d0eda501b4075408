// What an OTLP export request carries, as a collector reads it: the service names of its
// resources, its span names, its metric names. Binary protobuf (http/protobuf and gRPC) is
// decoded with the few fields of the OTLP protos read here (the others are skipped); the JSON
// encoding (http/json) has the same fields, by the same names.
import protobuf from 'protobufjs'

const repeated = (type: string, id: number) => ({ rule: 'repeated', type, id })

const root = protobuf.Root.fromJSON({
  nested: {
    AnyValue: { fields: { stringValue: { type: 'string', id: 1 } } },
    KeyValue: { fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } } },
    Resource: { fields: { attributes: repeated('KeyValue', 1) } },
    Span: { fields: { name: { type: 'string', id: 5 } } },
    ScopeSpans: { fields: { spans: repeated('Span', 2) } },
    ResourceSpans: { fields: { resource: { type: 'Resource', id: 1 }, scopeSpans: repeated('ScopeSpans', 2) } },
    ExportTraceServiceRequest: { fields: { resourceSpans: repeated('ResourceSpans', 1) } },
    NumberDataPoint: { fields: { asDouble: { type: 'double', id: 4 }, asInt: { type: 'sfixed64', id: 6 } } },
    Sum: { fields: { dataPoints: repeated('NumberDataPoint', 1) } },
    Metric: { fields: { name: { type: 'string', id: 1 }, unit: { type: 'string', id: 3 }, sum: { type: 'Sum', id: 7 } } },
    ScopeMetrics: { fields: { metrics: repeated('Metric', 2) } },
    ResourceMetrics: { fields: { resource: { type: 'Resource', id: 1 }, scopeMetrics: repeated('ScopeMetrics', 2) } },
    ExportMetricsServiceRequest: { fields: { resourceMetrics: repeated('ResourceMetrics', 1) } },
  },
})

interface Attribute {
  key: string
  value?: { stringValue?: string }
}
/** A metric as far as read here: a sum's points say whether each value went out as a double or an int. */
export interface Metric {
  name: string
  unit?: string
  sum?: { dataPoints?: { asDouble?: number; asInt?: unknown }[] }
}
interface Scoped {
  resource?: { attributes?: Attribute[] }
  scopeSpans?: { spans?: { name: string }[] }[]
  scopeMetrics?: { metrics?: Metric[] }[]
}
interface Request {
  resourceSpans?: Scoped[]
  resourceMetrics?: Scoped[]
}

export interface Payload {
  readonly services: string[]
  /** Span names (traces) or metric names (metrics). */
  readonly names: string[]
  /** The metrics (none for traces). */
  readonly metrics: Metric[]
}

/** Decodes an export request of the signal, JSON or binary as its content type says. */
export function readPayload(signal: 'traces' | 'metrics', contentType: string, body: Buffer): Payload {
  const type = signal === 'traces' ? 'ExportTraceServiceRequest' : 'ExportMetricsServiceRequest'
  const request = (/json/.test(contentType) ? JSON.parse(body.toString('utf8')) : root.lookupType(type).toObject(root.lookupType(type).decode(body))) as Request
  const resources = (signal === 'traces' ? request.resourceSpans : request.resourceMetrics) ?? []
  const services = resources.map((r) => r.resource?.attributes?.find((a) => a.key === 'service.name')?.value?.stringValue ?? '')
  const names = resources.flatMap((r) =>
    signal === 'traces' ? (r.scopeSpans ?? []).flatMap((s) => (s.spans ?? []).map((span) => span.name)) : (r.scopeMetrics ?? []).flatMap((s) => (s.metrics ?? []).map((m) => m.name)),
  )
  const metrics = signal === 'metrics' ? resources.flatMap((r) => (r.scopeMetrics ?? []).flatMap((s) => s.metrics ?? [])) : []
  return { services, names, metrics }
}
