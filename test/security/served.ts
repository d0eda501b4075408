// A gateway on both listeners from a YAML config (TLS ones included), on free loopback ports.
import type { FastifyInstance } from 'fastify'
import { buildGrpcServer, type GrpcFrontend } from '../../src/api/grpc/server.ts'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { configFrom } from '../helpers.ts'
import '../starter/scripted.ts'

export interface Served {
  app: FastifyInstance
  grpc: GrpcFrontend
  gateway: Gateway
  restPort: number
  grpcPort: number
  close(): Promise<void>
}

export async function serve(yaml: string): Promise<Served> {
  const config = configFrom(yaml)
  const gateway = new Gateway(config)
  const app = buildServer(config, { gateway })
  const frontend = buildGrpcServer(gateway, config)
  await gateway.load()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const grpcPort = await frontend.listen('127.0.0.1', 0)
  frontend.setServing(true)
  return {
    app,
    grpc: frontend,
    gateway,
    restPort: (app.server.address() as { port: number }).port,
    grpcPort,
    async close() {
      await Promise.all([app.close(), frontend.close(500)])
      await gateway.close()
    },
  }
}
