import type { FastifyInstance } from 'fastify'
import type { Gateway } from '../../gateway.ts'
import type { EnsembleRuntime } from '../../starter/ensemble.ts'

export function describeEnsemble(ens: EnsembleRuntime): Record<string, unknown> {
  return {
    name: ens.name,
    description: ens.config.description ?? null,
    strategy: { name: ens.strategyName, ...ens.config.strategy.options },
    models: ens.models.map((m) => ({ name: m.name, version: m.version, kind: m.kind })),
    budget_ms: ens.config.budget,
    inputs: ens.inputs,
    outputs: ens.outputs,
  }
}

export function describeModel(gateway: Gateway, name: string): Record<string, unknown> {
  const { model, executor, stats } = gateway.model(name)
  let metadata: { inputs: unknown; outputs: unknown } = { inputs: null, outputs: null }
  try {
    const m = executor.metadata()
    metadata = { inputs: m.inputs, outputs: m.outputs }
  } catch {
    // not loaded (yet, or not used by any ensemble): metadata stays null
  }
  const ensembles = [...gateway.config.ensembles.values()].filter((e) => e.models.includes(name)).map((e) => e.name)
  return { name, version: model.version, kind: model.kind, ensembles, ...metadata, stats: stats.toJSON() }
}

export function registerInfoRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const body: Record<string, unknown> = { ready: gateway.ready, status: gateway.status }
    // Detail only: an output that is down (Kafka spooling to disk) does not make the gateway unready.
    for (const [name, detail] of gateway.statusDetails) body[name] = detail()
    return gateway.ready ? body : reply.status(503).send(body)
  })
  app.get('/v1/ensembles', async () => ({
    ensembles: [...gateway.ensembles.values()].map((e) => ({
      name: e.name,
      strategy: e.strategyName,
      models: e.models.map((m) => m.name),
      budget_ms: e.config.budget,
    })),
  }))
  app.get<{ Params: { name: string } }>('/v1/ensembles/:name', async (request) => describeEnsemble(gateway.ensemble(request.params.name)))
  app.get<{ Params: { name: string } }>('/v1/models/:name', async (request) => describeModel(gateway, request.params.name))
}
