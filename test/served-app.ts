// A gateway served as `specserve serve` builds it, without listening: the REST app on a
// loaded gateway with its telemetry (so /metrics and the document's metrics route exist).
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../src/api/rest/server.ts'
import type { GatewayConfig } from '../src/config/load.ts'
import { Gateway } from '../src/gateway.ts'
import { startTelemetry } from '../src/telemetry/index.ts'

export interface ServedApp {
  readonly app: FastifyInstance
  readonly gateway: Gateway
  /** Closes the app, the telemetry and the gateway, in that order. */
  close(): Promise<void>
}

export async function serveLoaded(config: GatewayConfig): Promise<ServedApp> {
  const gateway = new Gateway(config)
  const telemetry = startTelemetry(gateway, config.telemetry)
  const app = buildServer(config, { gateway, telemetry })
  await gateway.load()
  return {
    app,
    gateway,
    async close() {
      await app.close()
      await telemetry.shutdown()
      await gateway.close()
    },
  }
}
