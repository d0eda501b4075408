// POST /v1/ensembles/{name}/predict: the native API over REST (src/api/native does the work).
import type { FastifyInstance } from 'fastify'
import type { Gateway } from '../../gateway.ts'
import { readPredict } from '../native/request.ts'
import { failureBody, resultBody } from '../native/result.ts'
import { mapResultError } from '../errors.ts'
import { trackRun } from './admission.ts'

export function registerPredictRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.post<{ Params: { name: string } }>('/v1/ensembles/:name/predict', async (request, reply) => {
    const req = readPredict(gateway, request.params.name, request.body, { id: request.headers['x-request-id'], budget: request.headers['x-budget-ms'] })
    const run = gateway.start(req, true)
    trackRun(reply, run)
    const result = await run.result
    if (!result.error) return resultBody(result)
    return reply.status(mapResultError(result).http).send(failureBody(result))
  })
}
