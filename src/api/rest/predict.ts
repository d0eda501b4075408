// POST /v1/ensembles/{name}/predict: the native API over REST (src/api/native does the work).
import type { FastifyInstance } from 'fastify'
import type { Gateway } from '../../gateway.ts'
import { readPredict } from '../native/request.ts'
import { resultJson } from '../native/result.ts'
import { mapResultError } from '../errors.ts'
import { forCaller } from '../../security/redact.ts'
import { admitRouted, trackRun } from './admission.ts'

const JSON_TYPE = 'application/json; charset=utf-8'

export function registerPredictRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.post<{ Params: { name: string } }>('/v1/ensembles/:name/predict', async (request, reply) => {
    admitRouted(gateway, reply, request.params.name)
    const req = readPredict(gateway, request.params.name, request.body, { id: request.headers['x-request-id'], budget: request.headers['x-budget-ms'] })
    const run = gateway.start(req, true)
    trackRun(reply, run)
    const result = await run.result
    // Written as text: no generic serialization of intermediate objects on the hot path.
    return reply
      .status(result.error ? mapResultError(result).http : 200)
      .type(JSON_TYPE)
      .send(resultJson(forCaller(result, request.principal)))
  })
}
