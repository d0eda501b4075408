// A gateway serving a repository as `specserve serve` wires it: the registry picks the
// versions, the REST app has its routes, the watch runs. Shared by the registry's own tests
// and the guarded ones (test/security/registry.int.test.ts).
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../../src/api/rest/server.ts'
import { loadConfigFile } from '../../src/config/load.ts'
import { Gateway } from '../../src/gateway.ts'
import { Registry } from '../../src/registry/registry.ts'
import type { Logger } from '../../src/types.ts'

export interface Served {
  readonly registry: Registry
  readonly gateway: Gateway
  readonly app: FastifyInstance
  stop(): Promise<void>
}

/** Loads the config file, seeds and gates its repository models, and starts the watch. */
export async function serveWithRegistry(file: string, log: Logger): Promise<Served> {
  const config = loadConfigFile(file)
  const registry = Registry.open(config)!
  const gateway = new Gateway(config, { versions: registry })
  const app = buildServer(config, { gateway, registry })
  registry.attach(gateway, log)
  try {
    await gateway.load()
  } catch (err) {
    await gateway.close() // as serve exits: the workers of a failed start go too
    throw err
  }
  await registry.start()
  return {
    registry,
    gateway,
    app,
    async stop() {
      await registry.close()
      await app.close()
      await gateway.close()
    },
  }
}
