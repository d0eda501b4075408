// The policy on the REST listener (native and Open Inference Protocol routes alike): each
// route is given what it needs as it is registered (onRoute), and one onRequest hook asks
// the guard before the body is read, so a refused request costs no body parsing. Nothing
// is registered on an open gateway: its requests pay for none of this.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import { handBackSlot } from '../api/rest/admission.ts'
import { GatewayError } from '../errors.ts'
import type { Gateway } from '../gateway.ts'
import type { Principal } from './guard.ts'
import { socketSubject } from './peer.ts'
import { Policy } from './policy.ts'
import type { Access } from './scopes.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, when the gateway has an `auth` section (src/security). */
    principal?: Principal
  }
  interface FastifyContextConfig {
    access?: Access
  }
}

const HEALTH_ROUTES = new Set(['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready'])

/**
 * What a route needs, from its method and URL pattern. A route not named here needs
 * `admin`: a route added later is closed until someone decides otherwise.
 */
export function routeAccess(method: string, url: string): Access {
  if (HEALTH_ROUTES.has(url)) return 'health'
  if (url === '/metrics') return 'metrics'
  if (url.startsWith('/admin/')) return 'admin'
  if (method === 'POST' && (url.endsWith('/predict') || url.endsWith('/infer'))) return 'predict'
  if ((method === 'GET' || method === 'HEAD') && (url.startsWith('/v1/') || url === '/v2' || url === '/v2/' || url.startsWith('/v2/models/') || url === '/openapi.json')) return 'read'
  return 'admin'
}

/** Puts the gateway's policy on the app; false (and nothing registered) when the gateway is open. Call before any route. */
export function registerGuard(app: FastifyInstance, gateway: Gateway): boolean {
  const policy = Policy.of(gateway, app.log)
  if (!policy) return false
  app.decorateRequest('principal', undefined)
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const needs = methods.map((m) => routeAccess(m, route.url))
    // One route, several methods: the strictest wins (admin, if they disagree).
    route.config = { ...route.config, access: needs.every((n) => n === needs[0]) ? needs[0] : 'admin' }
  })
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    // No route (a 404): any valid credentials, so routes cannot be probed anonymously.
    const access = request.routeOptions.config.access ?? 'authenticated'
    const ensemble = access === 'predict' ? ((request.params as { name?: string }).name ?? '') : ''
    let verdict: Principal | Promise<Principal>
    try {
      const guard = policy.current
      const authorization = request.headers.authorization
      // A verified client certificate names the caller when no bearer credentials do (auth.client_certs).
      const subject = guard.namesCertificates && (authorization === undefined || authorization === '') ? socketSubject(request.raw.socket) : undefined
      verdict = guard.check(authorization, access, ensemble, subject)
    } catch (err) {
      return refuse(policy, reply, err, done)
    }
    if (verdict instanceof Promise) {
      // A JWT seen for the first time, whose check may wait on the issuer's JWKS: a caller not
      // yet let through holds no max_in_flight slot meanwhile; its route takes one again once
      // it is let through, and a refusal is answered 401 whatever the load.
      handBackSlot(reply.raw)
      verdict.then(
        (principal) => {
          request.principal = principal
          done()
        },
        (err: unknown) => refuse(policy, reply, err, done),
      )
      return
    }
    request.principal = verdict
    done()
  })
  return true
}

/** Counts the refusal and hands it to the route's error handler (each API answers in its own error shape). */
function refuse(policy: Policy, reply: FastifyReply, err: unknown, done: HookHandlerDoneFunction): void {
  policy.refusals.count('rest', err)
  if (err instanceof GatewayError && err.code === 'RATE_LIMITED') void reply.header('retry-after', String(err.details?.retry_after_s ?? 1))
  if (err instanceof GatewayError && err.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer')
  done(err as Error)
}
