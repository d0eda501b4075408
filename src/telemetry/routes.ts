// Telemetry on the REST app: @fastify/otel's request spans (an incoming W3C traceparent
// becomes their parent) when tracing is on, and GET /metrics in Prometheus text format.
import type { FastifyInstance } from 'fastify'
import type { Telemetry } from './index.ts'

export function registerTelemetry(app: FastifyInstance, telemetry: Telemetry): void {
  const plugin = telemetry.fastifyPlugin()
  if (plugin) void app.register(plugin)
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
