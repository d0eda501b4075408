// SPECSERVE_ADMIN_TOKEN on a gateway without an `auth` section: the one check every admin
// route makes (POST /admin/reload, a model upload, a rollback). It runs in onRequest, so a
// refused request's body is never read nor parsed. The header is read as the guard reads it
// (`canonical`: the scheme in any case, spaces around the token), and a refusal is answered as
// the guard's are: 401 UNAUTHENTICATED with `www-authenticate: Bearer`. With an `auth` section
// the guard asks for the `admin` scope itself (the token being one more key with it).
import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../errors.ts'
import type { Gateway } from '../gateway.ts'
import { sha256 } from './digest.ts'
import { adminTokenFromEnv } from './exposure.ts'
import { canonical } from './guard.ts'
import { refusalsOf } from './refusals.ts'

export type AdminCheck = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

const open: AdminCheck = async () => undefined

/** The onRequest hook of an admin route: lets every request through when the gateway is guarded or no token is set. */
export function adminTokenCheck(gateway: Gateway, guarded: boolean): AdminCheck {
  const token = guarded ? undefined : adminTokenFromEnv()
  if (!token) return open
  const expected = sha256(`Bearer ${token}`)
  return async (request, reply) => {
    const header = request.headers.authorization
    const credential = header ? canonical(header) : null
    // Digests of equal length compared in constant time: how long the check takes says nothing about the token, its length included.
    if (timingSafeEqual(sha256(credential ?? ''), expected)) return
    refusalsOf(gateway).countCode('rest', 'UNAUTHENTICATED')
    void reply.header('www-authenticate', 'Bearer')
    throw new GatewayError('UNAUTHENTICATED', `${request.method} ${request.routeOptions.url ?? ''} needs Authorization: Bearer <SPECSERVE_ADMIN_TOKEN>`)
  }
}
