import type { FastifyRequest } from 'fastify'
import { pathOf } from '../../url-path.ts'

/**
 * A request as LOG_REQUESTS logs it: fastify's fields, with the URL's path alone. A query
 * string can carry a credential (`?token=…`), and the trace's url.path leaves it out too.
 */
export const requestLine = (req: FastifyRequest): Record<string, unknown> => ({
  method: req.method,
  url: pathOf(req.url),
  version: req.headers['accept-version'],
  host: req.host,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort,
})
