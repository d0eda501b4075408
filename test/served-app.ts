// A gateway served as `specserve serve` builds it, without listening: the REST app on a
// loaded gateway with its telemetry (so /metrics and the document's metrics route exist).
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../src/api/rest/server.ts'
import type { GatewayConfig } from '../src/config/load.ts'
import { Gateway } from '../src/gateway.ts'
import { startTelemetry, type Telemetry, type TelemetryOptions, type TelemetrySettings } from '../src/telemetry/index.ts'

export interface ServedApp {
  readonly app: FastifyInstance
  readonly gateway: Gateway
  readonly telemetry: Telemetry
  /** Closes the app, the telemetry and the gateway, in that order. */
  close(): Promise<void>
}

/** `settings` over the config's own telemetry section; `options` as startTelemetry takes them (a span processor to watch). */
export async function serveLoaded(config: GatewayConfig, settings: Partial<TelemetrySettings> = {}, options: TelemetryOptions = {}): Promise<ServedApp> {
  const gateway = new Gateway(config)
  const telemetry = startTelemetry(gateway, { ...config.telemetry, ...settings }, options)
  const app = buildServer(config, { gateway, telemetry })
  await gateway.load()
  await app.ready()
  return {
    app,
    gateway,
    telemetry,
    async close() {
      await app.close()
      await telemetry.shutdown()
      await gateway.close()
    },
  }
}
