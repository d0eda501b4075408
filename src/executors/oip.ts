// `kind: oip` — a model behind the Open Inference Protocol V2 (MLServer, Seldon Core v2,
// KServe, Triton), over REST (/v2/models/{m}/infer) or gRPC (inference.GRPCInferenceService,
// the same proto file the gateway's own V2 frontend serves).
import type { Client } from '@grpc/grpc-js'
import Type from 'typebox'
import { plainData } from '../tensor.ts'
import type { Tensor } from '../types.ts'
import { commonModelFields } from './common.ts'
import { decodeLittleEndian } from './remote/binary.ts'
import { checkRemote, remoteFields, remoteSettings, type RemoteModelConfig, type RemoteSettings } from './remote/config.ts'
import { badResponse } from './remote/errors.ts'
import { RemoteExecutor, type ProtocolAdapter, type UpstreamInput, type UpstreamMetadata } from './remote/executor.ts'
import { acquireClient, loadProtos, metadataFrom, serviceMethods, unary } from './remote/grpc.ts'
import { acquirePool, requestJson } from './remote/http.ts'
import { v2Specs } from './remote/metadata.ts'
import type { RawOutputs, RawTensor } from './remote/tensors.ts'
import type { ExecutorFactory } from './types.ts'

export interface OipModelConfig extends RemoteModelConfig {
  readonly kind: 'oip'
  /** The model's name on the upstream. */
  readonly model: string
  /** Seldon Core v2 routing: sent as the `seldon-model` header / metadata (e.g. `iris` or `flow.pipeline`). */
  readonly seldon_model?: string
}

const schema = Type.Object(
  {
    kind: Type.Literal('oip'),
    model: Type.String({ minLength: 1 }),
    seldon_model: Type.Optional(Type.String({ minLength: 1 })),
    ...remoteFields,
    ...commonModelFields,
  },
  { additionalProperties: false },
)

export const oipExecutorKind: ExecutorFactory<OipModelConfig> = {
  kind: 'oip',
  schema,
  check: (config, env) => checkRemote(config, env.baseDir),
  create(name, config, env) {
    const settings = remoteSettings(config, env.baseDir)
    const headers = config.seldon_model ? { ...settings.headers, 'seldon-model': config.seldon_model } : settings.headers
    const adapter = settings.protocol === 'grpc' ? oipGrpc(config, settings, headers) : oipRest(config, settings, headers)
    return new RemoteExecutor(name, 'oip', config, settings, adapter)
  },
}

const modelPath = (config: OipModelConfig, s: RemoteSettings): string =>
  `${s.basePath}/v2/models/${encodeURIComponent(config.model)}${config.version === undefined ? '' : `/versions/${encodeURIComponent(String(config.version))}`}`

function oipRest(config: OipModelConfig, s: RemoteSettings, headers: Record<string, string>): ProtocolAdapter {
  const { upstream, release } = acquirePool(s)
  const path = modelPath(config, s)
  return {
    async fetchMetadata(signal) {
      const body = (await requestJson(upstream, { method: 'GET', path, headers, signal })) as Record<string, unknown>
      return v2Metadata(body, `metadata of ${config.model}`)
    },
    async infer(inputs, outputs, signal) {
      const body = JSON.stringify({
        inputs: inputs.map(({ name, tensor }) => ({ name, shape: tensor.shape, datatype: tensor.datatype, data: plainData(tensor) })),
        outputs: outputs.map((name) => ({ name })),
      })
      return v2Outputs(await requestJson(upstream, { method: 'POST', path: `${path}/infer`, headers, body, signal }))
    },
    close: release,
  }
}

function v2Metadata(body: unknown, where: string): UpstreamMetadata {
  if (body === null || typeof body !== 'object') throw new Error(`${where}: not an object`)
  const m = body as { inputs?: unknown; outputs?: unknown; versions?: unknown }
  const versions = Array.isArray(m.versions) ? m.versions.filter((v) => typeof v === 'string' && v) : []
  return { inputs: v2Specs(m.inputs, `${where}, inputs`), outputs: v2Specs(m.outputs, `${where}, outputs`), version: versions.at(-1) as string | undefined }
}

function v2Outputs(body: unknown): RawOutputs {
  const outputs = (body as { outputs?: unknown } | null)?.outputs
  if (!Array.isArray(outputs)) throw badResponse('no "outputs" list in the answer')
  const out = new Map<string, RawTensor>()
  for (const t of outputs as { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown }[]) {
    if (typeof t?.name !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data)) throw badResponse('an output lacks name, shape or data')
    out.set(t.name, { datatype: typeof t.datatype === 'string' ? t.datatype : undefined, shape: t.shape.map(Number), data: t.data })
  }
  return out
}

// ---------------------------------------------------------------- gRPC

const PROTO_FILES = ['inference/grpc_service.proto']
const SERVICE = 'inference.GRPCInferenceService'

/** InferTensorContents field for each datatype (8/16-bit integers travel in the 32-bit fields). */
const CONTENTS: Readonly<Record<string, string>> = {
  BOOL: 'bool_contents', INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents', INT64: 'int64_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents', UINT64: 'uint64_contents',
  FP32: 'fp32_contents', FP64: 'fp64_contents', BYTES: 'bytes_contents',
}

function oipGrpc(config: OipModelConfig, s: RemoteSettings, headers: Record<string, string>): ProtocolAdapter {
  const methods = serviceMethods(loadProtos(PROTO_FILES), SERVICE)
  const { client, release } = acquireClient(s)
  const metadata = metadataFrom(headers)
  const version = config.version === undefined ? '' : String(config.version)
  return {
    async fetchMetadata(signal, timeoutMs) {
      const res = await unary(client as Client, methods.ModelMetadata!, { name: config.model, version }, metadata, timeoutMs, signal)
      return v2Metadata(res, `metadata of ${config.model}`)
    },
    async infer(inputs, outputs, signal, timeoutMs) {
      const request = {
        model_name: config.model,
        model_version: version,
        inputs: inputs.map(grpcInput),
        outputs: outputs.map((name) => ({ name })),
      }
      return grpcOutputs(await unary(client, methods.ModelInfer!, request, metadata, timeoutMs, signal))
    },
    close: release,
  }
}

function grpcInput({ name, tensor }: UpstreamInput): object {
  return { name, datatype: tensor.datatype, shape: tensor.shape, contents: { [CONTENTS[tensor.datatype]!]: contentsOf(tensor) } }
}

function contentsOf(tensor: Tensor): unknown[] {
  const { data } = tensor
  if (Array.isArray(data)) return data.map((s) => Buffer.from(s, 'utf8'))
  // int64 as decimal strings: exact, and what protobufjs accepts for 64-bit fields.
  if (data instanceof BigInt64Array) return Array.from(data, String)
  if (tensor.datatype === 'BOOL') return Array.from(data as Uint8Array, Boolean)
  return Array.from(data as ArrayLike<number>)
}

interface GrpcOutput {
  name?: string
  datatype?: string
  shape?: number[]
  contents?: Record<string, unknown[]> | null
}

function grpcOutputs(res: unknown): RawOutputs {
  const { outputs, raw_output_contents: raw } = (res ?? {}) as { outputs?: GrpcOutput[]; raw_output_contents?: Uint8Array[] }
  if (!Array.isArray(outputs)) throw badResponse('no outputs in the answer')
  const out = new Map<string, RawTensor>()
  outputs.forEach((t, i) => {
    const name = t.name ?? ''
    const datatype = t.datatype ?? ''
    const what = `output "${name}"`
    let data: ArrayLike<unknown>
    if (raw && raw.length > 0) {
      const bytes = raw[i]
      if (!bytes) throw badResponse(`${what}: no raw contents`)
      data = decodeLittleEndian(bytes, datatype, what)
    } else {
      const field = CONTENTS[datatype]
      if (!field) throw badResponse(`${what}: datatype ${datatype || '(none)'} is not supported`)
      data = t.contents?.[field] ?? []
    }
    out.set(name, { datatype, shape: t.shape ?? [], data })
  })
  return out
}
