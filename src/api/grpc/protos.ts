// Loads our .proto files at runtime with @grpc/proto-loader rather than generating code:
// the tree runs .ts directly (no build step to keep generated files in step), the
// server reflection service needs the same package definition anyway, and the wire
// types are small enough to describe by hand in ./messages.ts.
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Options, PackageDefinition, ServiceDefinition } from '@grpc/proto-loader'
import { loadSync } from '@grpc/proto-loader'
import { protoPath as healthProtoPath } from 'grpc-health-check'

export const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url))
export const PROTO_FILES = ['specserve/v1/gateway.proto', 'inference/grpc_service.proto'] as const

/**
 * Field names as written in the .proto (snake_case, like the REST JSON); 64-bit integers
 * as decimal strings so INT64 tensors stay exact; absent fields get their defaults.
 */
export const LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] }

export const packageDefinition: PackageDefinition = loadSync([...PROTO_FILES], LOADER_OPTIONS)

/** Our services plus grpc.health.v1, so reflection clients can describe everything served. */
export const reflectedDefinition: PackageDefinition = loadSync([...PROTO_FILES, healthProtoPath], {
  ...LOADER_OPTIONS,
  includeDirs: [PROTO_DIR, dirname(healthProtoPath)],
})

export const GATEWAY_SERVICE = 'specserve.v1.Gateway'
export const INFERENCE_SERVICE = 'inference.GRPCInferenceService'

export const serviceDefinition = (name: typeof GATEWAY_SERVICE | typeof INFERENCE_SERVICE): ServiceDefinition =>
  packageDefinition[name] as ServiceDefinition
