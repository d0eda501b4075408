// How REST bodies are read. A body is read as the bytes it was sent as, never decompressed, so
// one sent with a `content-encoding` other than identity (gzip, br, deflate) is refused 415
// UNSUPPORTED_ENCODING: read as its media type, a gzip JSON body would be "not UTF-8" and a
// gzip model stored compressed. The parsers check it (after the guard's onRequest, only for a
// request that has a body); the model upload as the request arrives (src/registry/routes.ts).
// A request without the header pays one property read.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { GatewayError } from '../../errors.ts'
import { quote } from '../../tensor/index.ts'
import { parseJsonBytes, type JsonWords } from '../json-bytes.ts'

/** How the native routes' refusals of a JSON body name it. */
const NATIVE_BODY: JsonWords = { subject: 'body', notJson: 'body is not valid JSON', empty: 'body is empty: its content-type says JSON' }

/**
 * The app's JSON parser, in place of fastify's: JSON in UTF-8, without keys that could reach a
 * prototype (json-bytes.ts), where fastify's parser named neither; never read compressed. And
 * no text parser: no route reads text, so a text/plain body gets the content-type refusal, as
 * any other type no route reads. (The V2 routes and the model upload add their own parsers.)
 */
export function registerJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const encoded = encodedBody(request)
    if (encoded) return done(encoded, undefined)
    let value: unknown
    try {
      value = parseJsonBytes(body as Buffer, NATIVE_BODY)
    } catch (err) {
      return done(err as Error, undefined)
    }
    done(null, value)
  })
  app.removeContentTypeParser('text/plain')
}

/** The refusal of a body sent with a content-encoding other than identity; undefined for one sent as is. */
export function encodedBody(request: FastifyRequest): GatewayError | undefined {
  const encoding = request.headers['content-encoding']
  if (encoding === undefined) return undefined
  const coding = encoding.trim().toLowerCase()
  if (coding === '' || coding === 'identity') return undefined
  return new GatewayError('UNSUPPORTED_ENCODING', `content-encoding ${quote(encoding)} is not supported: send the body uncompressed (no content-encoding, or identity)`)
}
