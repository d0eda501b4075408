// 405 METHOD_NOT_ALLOWED: a path the router serves, asked with a method it does not serve there
// (`DELETE /v1/ensembles/x/predict`, `GET /admin/reload`), is answered with an `Allow` header
// listing the methods it does serve, in the error shape of the API asked (`{code, message}`, or
// `{error, code}` under /v2); a path no route has stays 404 NOT_FOUND. Worked out on a miss
// only, in the not-found handlers: the router itself is asked, for each method some route has
// (known once, at startup), whether that method has a route at the URL. A request a route
// serves pays nothing for it.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { GatewayError } from '../../errors.ts'
import { quote } from '../../tensor/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The methods some route serves at `url` (a request's URL, query and all), in order; none for a path no route has. */
    methodsAt(url: string): readonly string[]
  }
}

/** What the router is asked on a miss, fixed once the routes are in. */
interface Table {
  /** Every method some route has (HEAD twins of the GET routes included), sorted. */
  readonly methods: readonly string[]
  /**
   * The handler fastify's router returns for a route it matched. This leans on fastify
   * internals no API promises (fastify 5's route.js, find-my-way): findRoute() returns the
   * handler the router stores, and that is one function shared by every route (fastify's
   * request dispatcher, not the route's own handler); for a URL that is not valid
   * percent-encoding, or whose segment is over maxParamLength, the router returns a stand-in
   * that answers the framework error instead, which is no route and must not count as one. A
   * fastify that changes either breaks 405s: test/api/rest/methods.int.test.ts catches it (its
   * 405 rows would get 404 if handlers differed per route; its 150-character segment row would
   * get 405 if the stand-in counted).
   */
  readonly routed: unknown
}

/** Call before any route is added: the table is read from the routes as they are added. */
export function registerMethodTable(app: FastifyInstance): void {
  const methods = new Set<string>()
  let sample: { method: string; url: string } | undefined
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) methods.add(method)
    // A route without parameters: its own URL reaches it.
    if (!sample && !/[:*]/.test(route.url)) sample = { method: [route.method].flat()[0]!, url: route.url }
  })
  let table: Table | undefined
  const built = (): Table => {
    if (!table) {
      const routed = sample && app.findRoute(sample)?.handler
      if (!routed) throw new Error('no route to read the router by')
      table = { methods: [...methods].sort(), routed }
    }
    return table
  }
  // At startup, once every route is in (the router takes none after it).
  app.addHook('onReady', (done) => {
    built()
    done()
  })
  app.decorate('methodsAt', (url: string): readonly string[] => {
    const { methods, routed } = built()
    return methods.filter((method) => app.findRoute({ method, url })?.handler === routed)
  })
}

/**
 * Answers the requests no route has, under `app`'s prefix, in the error shape of its API: 405
 * with `Allow` for a path some route serves with other methods, else 404. It answers from an
 * onRequest hook of a context of its own, holding no route: so after the guard's (a caller
 * without valid credentials learns nothing of the routes), but before the body is read (none
 * is read for a route that is not there), and no request a route serves runs it.
 */
export function registerNotFound(app: FastifyInstance, shape: 'native' | 'oip'): void {
  const answer = (request: FastifyRequest, reply: FastifyReply): void => {
    const allowed = request.server.methodsAt(request.url)
    const err =
      allowed.length > 0
        ? new GatewayError('METHOD_NOT_ALLOWED', `method ${request.method} is not allowed on ${quote(request.url, 200)}: it takes ${allowed.join(', ')}`)
        : new GatewayError('NOT_FOUND', `no route ${request.method} ${quote(request.url, 200)}`)
    if (allowed.length > 0) void reply.header('allow', allowed.join(', '))
    void reply.status(err.statusCode).send(shape === 'native' ? { code: err.code, message: err.message } : { error: err.message, code: err.code })
  }
  void app.register(async function notFound(context) {
    // Answered here, not passed on (no done()): nothing else runs for it.
    context.addHook('onRequest', (request, reply) => answer(request, reply))
    context.setNotFoundHandler(answer)
  })
}

/** What a path parameter may be that a client resolving the URL (RFC 3986 §5.2.4; WHATWG URL, `%2e` too) removes, with the segment before it for `..`. */
const SEGMENTS = ['x', '.', '..'] as const

/**
 * Whether a request for the route `method pattern` (`POST /v1/ensembles/:name/predict`) can be
 * answered 405: when a path parameter is `.` or `..`, clients (curl, browsers, fetch, Python's
 * urllib3) resolve the URL before sending it, so it reaches another path
 * (`/v1/ensembles/predict`); where routes serve that path with other methods only, the answer
 * is 405. For its OpenAPI document (openapi.ts), built once.
 */
export function answers405(app: FastifyInstance, method: string, pattern: string): boolean {
  const segments = pattern.split('/')
  const params = segments.flatMap((segment, i) => (segment.startsWith(':') ? [i] : []))
  // Each way of spelling the parameters with a plain name, `.` or `..`, but all plain.
  for (let n = 1; n < SEGMENTS.length ** params.length; n++) {
    const path = segments.map((segment, i) => (params.includes(i) ? SEGMENTS[Math.floor(n / SEGMENTS.length ** params.indexOf(i)) % SEGMENTS.length] : segment)).join('/')
    const methods = app.methodsAt(new URL(path, 'http://resolved').pathname)
    if (methods.length > 0 && !methods.includes(method)) return true
  }
  return false
}
