// POST /admin/reload: re-reads the config file and hot-reloads it, answering with what
// changed, or 422 with every config error (the running config keeps serving). Off unless
// `admin.reload_endpoint: true`. With an `auth` section the guard asks for the `admin`
// scope (SPECSERVE_ADMIN_TOKEN is then one more key with that scope, see src/security);
// without one, SPECSERVE_ADMIN_TOKEN set means the admin token check (src/security/admin-token.ts).
import type { FastifyInstance } from 'fastify'
import type { Gateway } from '../gateway.ts'
import { adminTokenCheck } from '../security/admin-token.ts'
import { reloadFromFile } from './index.ts'

export function registerAdminRoutes(app: FastifyInstance, gateway: Gateway, guarded = false): void {
  if (!gateway.config.admin.reload_endpoint) return
  app.post('/admin/reload', { onRequest: adminTokenCheck(gateway, guarded) }, async (request, reply) => {
    // The reload's lines name the request that asked for it: request.log is the bare app log when requests are not logged.
    const outcome = await reloadFromFile(gateway, request.server.log.child({ reqId: request.id }))
    if (outcome.ok) return { reloaded: true, file: gateway.config.file, ...outcome.report, warnings: outcome.warnings }
    return reply.status(outcome.status).send({ code: outcome.code, message: outcome.message, errors: outcome.errors })
  })
}
