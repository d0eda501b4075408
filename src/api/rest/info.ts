// Health, readiness and the GET routes of the native API (what src/api/native/describe.ts returns).
import type { FastifyInstance } from 'fastify'
import type { Gateway } from '../../gateway.ts'
import { describeEnsemble, describeModel, listEnsembles, listModels } from '../native/describe.ts'

export function registerInfoRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (request, reply) => {
    const ready = gateway.readyForTraffic
    // Loaded (taking predicts), but a part still holds readiness: the model stream catching up.
    const waiting = gateway.ready && !ready
    const body: Record<string, unknown> = { ready, status: waiting ? 'waiting' : gateway.status }
    // The parts' detail (brokers, topics, spool paths, model names, last errors) is for callers
    // who may read the gateway's setup: on a guarded gateway, those with `read`; a probe gets the verdict.
    const detailed = request.principal === undefined || request.principal.grants.read
    if (detailed && waiting) body.waiting_for = gateway.holds.waiting()
    // Detail only: an output that is down (Kafka spooling to disk) does not make the gateway unready.
    if (detailed) for (const [path, component] of gateway.components) setPath(body, path, component.status())
    return ready ? body : reply.status(503).send(body)
  })
  app.get('/v1/ensembles', async () => ({ ensembles: listEnsembles(gateway) }))
  app.get<{ Params: { name: string } }>('/v1/ensembles/:name', async (request) => describeEnsemble(gateway.ensemble(request.params.name)))
  app.get('/v1/models', async () => ({ models: listModels(gateway) }))
  app.get<{ Params: { name: string } }>('/v1/models/:name', async (request) => describeModel(gateway, request.params.name, request.principal))
}

/** Sets `a.b.c` in a nested object, creating the levels on the way. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let at = target
  for (const key of keys.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>
  at[keys.at(-1)!] = value
}
