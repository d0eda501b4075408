// Telemetry on the REST app: @fastify/otel's request spans (an incoming W3C traceparent
// becomes their parent) when tracing is on, and GET /metrics in Prometheus text format.
import type { FastifyInstance } from 'fastify'
import type { Telemetry } from './index.ts'

/**
 * Before any route is added: @fastify/otel gives each route, as it is added, the hooks that
 * end its request span (onSend, with ERROR on a 5xx). A route added before the plugin has
 * loaded has none: its span ends only on onResponse, without ERROR, and never for a client
 * that went away (no onResponse then).
 */
export function traceRequests(app: FastifyInstance, telemetry: Telemetry): void {
  const plugin = telemetry.fastifyPlugin()
  if (plugin) void app.register(plugin)
}

export function registerMetricsRoute(app: FastifyInstance, telemetry: Telemetry): void {
  const prometheus = telemetry.prometheus
  if (!prometheus) return
  app.get('/metrics', async (request, reply) => {
    // Settled within milliseconds of the start; a scrape before that waits rather than log an error.
    await telemetry.resourceSettled()
    // The exporter writes the whole response (status, content type, body) itself.
    reply.hijack()
    prometheus.getMetricsRequestHandler(request.raw, reply.raw)
  })
}
