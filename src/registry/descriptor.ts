// The ModelDescriptor of the models topic (proto/specserve/v1/model.proto): encoded by
// `specserve publish-model`, decoded by the model stream. Any protobuf client writes the
// same bytes from the same .proto.
import { join } from 'node:path'
import protobuf from 'protobufjs'
import { PROTO_DIR } from '../proto/index.ts'

export interface ModelDescriptor {
  readonly name: string
  /** 0: the next after the highest known. */
  readonly version: number
  readonly description: string
  readonly modelType: string
  readonly payload: { readonly kind: 'data'; readonly data: Uint8Array } | { readonly kind: 'location'; readonly location: string } | null
  /** Lower-case hex; empty when not set. */
  readonly sha256: string
}

let type: protobuf.Type | undefined
// Field names as in the .proto (model_type), as every other loader of ours keeps them.
const descriptorType = (): protobuf.Type => (type ??= new protobuf.Root().loadSync(join(PROTO_DIR, 'specserve/v1/model.proto'), { keepCase: true }).lookupType('specserve.v1.ModelDescriptor'))

export function encodeDescriptor(d: ModelDescriptor): Uint8Array {
  const payload = d.payload?.kind === 'data' ? { data: d.payload.data } : d.payload?.kind === 'location' ? { location: d.payload.location } : {}
  return descriptorType().encode({ name: d.name, version: d.version, description: d.description, model_type: d.modelType, sha256: d.sha256, ...payload }).finish()
}

/** Throws with a readable message when the bytes are not a ModelDescriptor. */
export function decodeDescriptor(bytes: Uint8Array): ModelDescriptor {
  const t = descriptorType()
  let decoded: Record<string, unknown>
  try {
    decoded = t.toObject(t.decode(bytes), { longs: String, bytes: Buffer, oneofs: true, defaults: true })
  } catch (err) {
    throw new Error(`not a specserve.v1.ModelDescriptor: ${(err as Error).message}`, { cause: err })
  }
  const version = Number(decoded.version)
  if (!Number.isSafeInteger(version) || version < 0) throw new Error(`version ${String(decoded.version)} is not a non-negative integer`)
  const payload = decoded.payload === 'data' ? { kind: 'data' as const, data: decoded.data as Buffer } : decoded.payload === 'location' ? { kind: 'location' as const, location: decoded.location as string } : null
  return {
    name: decoded.name as string,
    version,
    description: decoded.description as string,
    modelType: decoded.model_type as string,
    payload,
    sha256: (decoded.sha256 as string).toLowerCase(),
  }
}
