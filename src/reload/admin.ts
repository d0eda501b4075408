// POST /admin/reload: re-reads the config file and hot-reloads it, answering with what
// changed, or 422 with every config error (the running config keeps serving). Off unless
// `admin.reload_endpoint: true`. With an `auth` section the guard asks for the `admin`
// scope (SPECSERVE_ADMIN_TOKEN is then one more key with that scope, see src/security);
// without one, SPECSERVE_ADMIN_TOKEN set means `Authorization: Bearer <token>` is checked here.
import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { ErrorCatalogue } from '../errors.ts'
import type { Gateway } from '../gateway.ts'
import { sha256 } from '../security/digest.ts'
import { refusalsOf } from '../security/refusals.ts'
import { reloadFromFile } from './index.ts'

/** The admin token check every admin endpoint makes (the reload, model uploads, rollback). */
export function authorized(header: string | undefined, token: string | undefined): boolean {
  if (!token) return true
  // Digests of equal length compared in constant time: how long the check takes says nothing about the token, its length included.
  return timingSafeEqual(sha256(header ?? ''), sha256(`Bearer ${token}`))
}

export function registerAdminRoutes(app: FastifyInstance, gateway: Gateway, guarded = false): void {
  if (!gateway.config.admin.reload_endpoint) return
  const token = guarded ? undefined : process.env.SPECSERVE_ADMIN_TOKEN || undefined
  app.post('/admin/reload', async (request, reply) => {
    if (!authorized(request.headers.authorization, token)) {
      refusalsOf(gateway).countCode('rest', 'UNAUTHENTICATED')
      return reply.status(ErrorCatalogue.UNAUTHENTICATED.http).send({ code: 'UNAUTHENTICATED', message: 'POST /admin/reload needs Authorization: Bearer <SPECSERVE_ADMIN_TOKEN>' })
    }
    const outcome = await reloadFromFile(gateway, request.server.log)
    if (outcome.ok) return { reloaded: true, file: gateway.config.file, ...outcome.report, warnings: outcome.warnings }
    return reply.status(outcome.status).send({ code: outcome.code, message: outcome.message, errors: outcome.errors })
  })
}
