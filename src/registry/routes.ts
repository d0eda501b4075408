// REST for models as data: a model's versions (read), an upload and a rollback (admin).
// With an `auth` section the guard asks for the `read` and `admin` scopes (src/security);
// without one, the same SPECSERVE_ADMIN_TOKEN check as POST /admin/reload (src/security/admin-token.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { headerValue } from '../api/native/request.ts'
import { encodedBody } from '../api/rest/bodies.ts'
import { ErrorCatalogue, GatewayError } from '../errors.ts'
import { adminTokenCheck } from '../security/admin-token.ts'
import type { Registry } from './registry.ts'
import { MAX_VERSION, parseVersion, type VersionMeta } from './version-meta.ts'

type Params = { name: string; version: string }

/**
 * Uploads held at once, being read, stored or judged (each up to max_model_bytes in memory
 * until it is answered): one more is refused OVERLOADED before its body is read.
 */
export const MAX_UPLOADS_HELD = 4

/** A version in a URL: 1 to 2^53 - 1, as the repository's directories hold them (a larger one would be stored as another number). */
function versionParam(text: string): number {
  const version = parseVersion(text)
  if (version === undefined) throw new GatewayError('BAD_REQUEST', `a version is an integer from 1 to ${MAX_VERSION}`)
  return version
}

/** The answer to an upload: 201 when it serves, 202 when it starts as a canary, 200 when kept aside (older, not in the policy), 422 when rejected. */
function uploaded(reply: FastifyReply, name: string, meta: VersionMeta): unknown {
  if (meta.state === 'rejected') {
    return reply.status(ErrorCatalogue.MODEL_REJECTED.http).send({ code: 'MODEL_REJECTED', message: `version ${meta.version} of "${name}" rejected: ${meta.reason}`, version: meta })
  }
  return reply.status(meta.state === 'serving' ? 201 : meta.state === 'canary' ? 202 : 200).send({ model: name, version: meta })
}

/**
 * A model is read as sent: a compressed one would be stored as its compressed bytes
 * (api/rest/bodies.ts). Refused from its headers, so it takes no upload slot and its body
 * (up to max_model_bytes) is not read only to be refused.
 */
async function uncompressed(request: FastifyRequest): Promise<void> {
  const encoded = encodedBody(request)
  if (encoded) throw encoded
}

export function registerRegistryRoutes(app: FastifyInstance, registry: Registry, guarded = false): void {
  // Checked as the request arrives: an unauthenticated upload is refused before its body is read.
  const admin = adminTokenCheck(app.gateway, guarded)

  app.get<{ Params: Params }>('/v1/models/:name/versions', async (request) => {
    const { name } = request.params
    return { model: name, serving: registry.serving(name) ?? null, versions: registry.list(name) }
  })
  app.get<{ Params: Params }>('/v1/models/:name/versions/:version', async (request) => registry.version(request.params.name, versionParam(request.params.version)))

  app.post<{ Params: Params }>('/v1/models/:name/rollback', { onRequest: admin }, async (request) => {
    const meta = await registry.rollback(request.params.name)
    return { model: request.params.name, serving: meta.version, version: meta }
  })

  let held = 0
  /**
   * Each held upload's holders: its connection until the answer is done (or the client gone),
   * and its handler while it runs (it holds the body). The slot is free when neither does.
   */
  const slots = new WeakMap<FastifyRequest, () => () => void>()
  const hold = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (held >= MAX_UPLOADS_HELD) throw new GatewayError('OVERLOADED', `${held} model uploads are being read, stored or judged, the most held at once: retry once one is answered`)
    held++
    let holders = 1
    const release = (): void => {
      if (--holders === 0) held--
    }
    slots.set(request, () => {
      holders++
      return release
    })
    reply.raw.once('close', release)
  }
  /** The handler takes hold of its upload's slot; the function returned lets go. */
  const handling = (request: FastifyRequest): (() => void) => slots.get(request)!()

  // The upload takes raw ONNX bytes, up to repository.max_model_bytes (413 over it).
  void app.register(async (scope) => {
    scope.addContentTypeParser(['application/octet-stream', 'application/onnx'], { parseAs: 'buffer', bodyLimit: registry.repository.maxModelBytes }, (_request, body, done) => done(null, body))
    scope.put<{ Params: Params; Body: Buffer }>('/v1/models/:name/versions/:version', { onRequest: [admin, uncompressed, hold] }, async (request, reply) => {
      const handled = handling(request)
      try {
        const { name } = request.params
        const version = versionParam(request.params.version)
        if (!Buffer.isBuffer(request.body) || request.body.length === 0) throw new GatewayError('BAD_REQUEST', 'the body is the model: ONNX bytes sent as application/octet-stream')
        // The UTF-8 text the client sent, as a Kafka descriptor's is stored (empty is none there too); no
        // limit of its own, as there: a header is within the 16 KiB of request line and headers anyway.
        const description = headerValue(request.headers['x-model-description'], 'x-model-description')
        const meta = await registry.arrive(name, request.body, { version, source: 'upload', description })
        return uploaded(reply, name, meta)
      } finally {
        handled()
      }
    })
  })
}
