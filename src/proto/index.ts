// The one place our .proto files are loaded (with @grpc/proto-loader, at run time: the
// tree runs .ts directly, and server reflection needs the package definitions anyway).
// The gRPC frontends and the remote gRPC executors share the directory and the options,
// so a message means the same thing on both sides: INT64 is exact both ways.
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MethodDefinition } from '@grpc/grpc-js'
import { loadSync, type Options, type PackageDefinition, type ServiceDefinition } from '@grpc/proto-loader'
import { protoPath as healthProtoPath } from 'grpc-health-check'

export const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url))

/**
 * Field names as written in the .proto (snake_case, like the REST JSON); 64-bit integers
 * as decimal strings (exact beyond 2^53); enums by name; absent fields at their defaults
 * and repeated ones as arrays; oneofs say which member is set; `json` writes NaN and
 * infinities as strings (the tensor codecs read both) and expands a google.protobuf.Any
 * whose type is loaded (TF Serving's metadata).
 */
export const LOADER_OPTIONS: Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
  json: true,
  includeDirs: [PROTO_DIR],
})

export const GATEWAY_SERVICE = 'specserve.v1.Gateway'
export const INFERENCE_SERVICE = 'inference.GRPCInferenceService'
export const TFSERVING_SERVICE = 'tensorflow.serving.PredictionService'
export const SELDON_SERVICE = 'seldon.protos.Seldon'

/** The file that defines each service we serve or call. */
const FILES = {
  [GATEWAY_SERVICE]: 'specserve/v1/gateway.proto',
  [INFERENCE_SERVICE]: 'inference/grpc_service.proto',
  [TFSERVING_SERVICE]: 'tensorflow/serving/prediction_service.proto',
  [SELDON_SERVICE]: 'seldon/prediction.proto',
} as const

export type ServiceName = keyof typeof FILES

/** The services the gRPC server serves (and reflects). */
const SERVED = [GATEWAY_SERVICE, INFERENCE_SERVICE] as const

/** The package of each service the gRPC server serves → the file that declares it, as clients import it. */
export const SERVED_PACKAGE_FILES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(SERVED.map((name) => [name.slice(0, name.lastIndexOf('.')), FILES[name]])),
)

const loaded = new Map<string, PackageDefinition>()

function load(files: readonly string[], includeDirs: readonly string[] = [PROTO_DIR]): PackageDefinition {
  const key = files.join('|')
  let def = loaded.get(key)
  if (!def) {
    def = loadSync([...files], { ...LOADER_OPTIONS, includeDirs: [...includeDirs] })
    loaded.set(key, def)
  }
  return def
}

/** A service's definition (method paths, serializers), loaded once per process. */
export function service(name: ServiceName): ServiceDefinition {
  return load([FILES[name]])[name] as ServiceDefinition
}

export type Method = MethodDefinition<object, object>

/** A service's methods by name, for a client. */
export function serviceMethods(name: ServiceName): Readonly<Record<string, Method>> {
  return service(name) as unknown as Record<string, Method>
}

/** What the gRPC server serves, plus grpc.health.v1, so reflection clients can describe everything. */
export function reflectedDefinition(): PackageDefinition {
  return load([...SERVED.map((name) => FILES[name]), healthProtoPath], [PROTO_DIR, dirname(healthProtoPath)])
}
