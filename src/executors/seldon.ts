// `kind: seldon` — a model behind the Seldon Core v1 protocol: REST (POST
// /api/v1.0/predictions with data.ndarray or data.tensor) or gRPC (seldon.protos.Seldon/
// Predict with a SeldonMessage). A SeldonMessage carries one tensor each way, so the model
// declares exactly one input and one output in YAML (v1 has no tensor metadata to fetch).
import { ModelErrorCode } from '../errors.ts'
import Type from 'typebox'
import { plainData, toNested } from '../tensor.ts'
import type { Tensor } from '../types.ts'
import { commonModelFields } from './common.ts'
import { checkRemote, remoteFields, remoteSettings, type RemoteModelConfig, type RemoteSettings } from './remote/config.ts'
import { UpstreamError, badResponse, excerpt } from './remote/errors.ts'
import { RemoteExecutor, type ProtocolAdapter } from './remote/executor.ts'
import { acquireClient, loadProtos, metadataFrom, serviceMethods, unary } from './remote/grpc.ts'
import { acquirePool, requestJson } from './remote/http.ts'
import type { RawOutputs, RawTensor } from './remote/tensors.ts'
import { fromTensorProto, type TfTensor } from './tfserving.ts'
import type { ExecutorFactory } from './types.ts'

export interface SeldonModelConfig extends RemoteModelConfig {
  readonly kind: 'seldon'
  /** SeldonDeployment name: sent as the `seldon` routing header / metadata. */
  readonly deployment?: string
  /** Its namespace: sent as the `namespace` routing header / metadata. */
  readonly namespace?: string
  /** REST path of the predictions endpoint (default /api/v1.0/predictions, after the URL's own path). */
  readonly path?: string
  /** How the input travels: `ndarray` (REST default) or `tensor` (gRPC default). */
  readonly data_format?: 'ndarray' | 'tensor'
  /** Feature names sent as data.names. */
  readonly names?: readonly string[]
  /** Sent as meta.tags. */
  readonly tags?: Readonly<Record<string, string | number | boolean>>
}

const schema = Type.Object(
  {
    kind: Type.Literal('seldon'),
    deployment: Type.Optional(Type.String({ minLength: 1 })),
    namespace: Type.Optional(Type.String({ minLength: 1 })),
    path: Type.Optional(Type.String({ pattern: '^/' })),
    data_format: Type.Optional(Type.Union([Type.Literal('ndarray'), Type.Literal('tensor')])),
    names: Type.Optional(Type.Array(Type.String())),
    tags: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]))),
    ...remoteFields,
    ...commonModelFields,
  },
  { additionalProperties: false },
)

export const seldonExecutorKind: ExecutorFactory<SeldonModelConfig> = {
  kind: 'seldon',
  schema,
  check(config, env) {
    const problems = checkRemote(config, env.baseDir)
    for (const field of ['inputs', 'outputs'] as const) {
      if (config[field]?.length !== 1) problems.push({ field, message: `declare exactly one ${field.slice(0, -1)}: a Seldon v1 message carries one tensor` })
    }
    return problems
  },
  create(name, config, env) {
    const settings = remoteSettings(config, env.baseDir)
    const routing: Record<string, string> = { ...settings.headers }
    if (config.deployment) routing.seldon = config.deployment
    if (config.namespace) routing.namespace = config.namespace
    const adapter = settings.protocol === 'grpc' ? seldonGrpc(config, settings, routing) : seldonRest(config, settings, routing)
    return new RemoteExecutor(name, 'seldon', config, settings, adapter)
  },
}

function message(config: SeldonModelConfig, tensor: Tensor, format: 'ndarray' | 'tensor', grpc: boolean): object {
  const names = config.names ?? []
  const data =
    format === 'tensor'
      ? { names, tensor: { shape: tensor.shape, values: plainData(tensor) } }
      : { names, ndarray: grpc ? toListValue(toNested(tensor) as unknown[]) : toNested(tensor) }
  return config.tags ? { data, meta: { tags: grpc ? mapValues(config.tags, toValue) : config.tags } } : { data }
}

/** The one tensor of an answer, under the declared output's upstream name. */
function answer(res: unknown, outputName: string, grpc: boolean): RawOutputs {
  const msg = (res ?? {}) as { status?: { status?: unknown; info?: unknown; reason?: unknown }; data?: Record<string, unknown> }
  if (msg.status?.status === 'FAILURE' || msg.status?.status === 1) {
    throw new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, `Seldon FAILURE: ${excerpt(String(msg.status.info ?? msg.status.reason ?? ''))}`)
  }
  const data = msg.data
  let tensor: RawTensor
  if (data?.tensor) {
    const t = data.tensor as { shape?: unknown; values?: unknown }
    if (!Array.isArray(t.shape) || !Array.isArray(t.values)) throw badResponse('data.tensor lacks shape or values')
    tensor = { shape: t.shape.map(Number), data: t.values }
  } else if (data?.ndarray !== undefined && data.ndarray !== null) {
    const nd = grpc ? fromListValue(data.ndarray) : data.ndarray
    if (!Array.isArray(nd)) throw badResponse('data.ndarray is not an array')
    tensor = { data: nd }
  } else if (data?.tftensor) {
    tensor = fromTensorProto(data.tftensor as TfTensor, outputName)
  } else {
    throw badResponse('no data.ndarray, data.tensor or data.tftensor in the answer')
  }
  return new Map([[outputName, tensor]])
}

function seldonRest(config: SeldonModelConfig, s: RemoteSettings, headers: Record<string, string>): ProtocolAdapter {
  const { upstream, release } = acquirePool(s)
  const path = `${s.basePath}${config.path ?? '/api/v1.0/predictions'}`
  const format = config.data_format ?? 'ndarray'
  return {
    fetchMetadata: () => Promise.resolve(null),
    async infer(inputs, outputs, signal) {
      const body = JSON.stringify(message(config, inputs[0]!.tensor, format, false))
      return answer(await requestJson(upstream, { method: 'POST', path, headers, body, signal }), outputs[0]!, false)
    },
    close: release,
  }
}

const PROTO_FILES = ['seldon/prediction.proto']

function seldonGrpc(config: SeldonModelConfig, s: RemoteSettings, headers: Record<string, string>): ProtocolAdapter {
  const methods = serviceMethods(loadProtos(PROTO_FILES), 'seldon.protos.Seldon')
  const { client, release } = acquireClient(s)
  const metadata = metadataFrom(headers)
  const format = config.data_format ?? 'tensor'
  return {
    fetchMetadata: () => Promise.resolve(null),
    async infer(inputs, outputs, signal, timeoutMs) {
      const res = await unary(client, methods.Predict!, message(config, inputs[0]!.tensor, format, true), metadata, timeoutMs, signal)
      return answer(res, outputs[0]!, true)
    },
    close: release,
  }
}

// google.protobuf.Value / ListValue as proto-loader sees them (snake_case members of a oneof).
type PbValue = { number_value?: number; string_value?: string; bool_value?: boolean; list_value?: { values?: PbValue[] }; null_value?: unknown; kind?: string }

function toValue(v: unknown): PbValue {
  if (typeof v === 'number') return { number_value: v }
  if (typeof v === 'string') return { string_value: v }
  if (typeof v === 'boolean') return { bool_value: v }
  if (Array.isArray(v)) return { list_value: toListValue(v) }
  return { null_value: 'NULL_VALUE' }
}

function toListValue(list: unknown[]): { values: PbValue[] } {
  return { values: list.map(toValue) }
}

function fromValue(v: PbValue): unknown {
  switch (v.kind) {
    case 'number_value':
      return v.number_value
    case 'string_value':
      return v.string_value
    case 'bool_value':
      return v.bool_value
    case 'list_value':
      return fromListValue(v.list_value)
    default:
      return null
  }
}

function fromListValue(list: unknown): unknown[] {
  const values = (list as { values?: PbValue[] } | null)?.values
  if (!Array.isArray(values)) throw badResponse('data.ndarray is not a list')
  return values.map(fromValue)
}

const mapValues = <T, U>(o: Readonly<Record<string, T>>, f: (v: T) => U): Record<string, U> =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]))
