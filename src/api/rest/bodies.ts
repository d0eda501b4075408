// How REST bodies are read, in the content-type parsers (so after the guard's onRequest, and
// only for a request that has a body). A body is read as the bytes it was sent as: one sent
// with a `content-encoding` other than identity (gzip, br, deflate) is refused 415
// UNSUPPORTED_ENCODING, where it was read as the bytes of its media type ("body is not valid
// JSON: its bytes are not UTF-8" for a gzip JSON body). A request without the header pays one
// property read.
import type { FastifyRequest } from 'fastify'
import { GatewayError } from '../../errors.ts'
import { quote } from '../../tensor/index.ts'

/** The refusal of a body sent with a content-encoding other than identity; undefined for one sent as is. */
export function encodedBody(request: FastifyRequest): GatewayError | undefined {
  const encoding = request.headers['content-encoding']
  if (encoding === undefined) return undefined
  const coding = encoding.trim().toLowerCase()
  if (coding === '' || coding === 'identity') return undefined
  return new GatewayError('UNSUPPORTED_ENCODING', `content-encoding ${quote(encoding)} is not supported: send the body uncompressed (no content-encoding, or identity)`)
}
