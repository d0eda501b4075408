// `kind: seldon` — a model behind the Seldon Core v1 protocol: REST (POST
// /api/v1.0/predictions with data.ndarray or data.tensor) or gRPC (seldon.protos.Seldon/
// Predict with a SeldonMessage). A SeldonMessage carries one tensor each way, so the model
// declares exactly one input and one output in YAML (v1 has no tensor metadata to fetch).
// The message's data is encoded and decoded by src/tensor/seldon.ts.
import Type, { type Static } from 'typebox'
import { ModelErrorCode } from '../errors.ts'
import { SELDON_SERVICE, serviceMethods } from '../proto/index.ts'
import { fail, fromSeldonData, toSeldonData, toValue, type NamedTensor, type SeldonFormat, type Tensor } from '../tensor/index.ts'
import { commonModelFields } from './common.ts'
import { checkHeader, parseRemote, remoteFields, type RemoteSettings } from './remote/config.ts'
import { UpstreamError, excerpt, inputNotCarried, upstreamFailure } from './remote/errors.ts'
import { RemoteExecutor, type ProtocolAdapter } from './remote/executor.ts'
import { acquireClient, metadataFrom, unary } from './remote/grpc.ts'
import { acquirePool, requestJson } from './remote/http.ts'
import type { WireOutputs } from './remote/outputs.ts'
import type { ExecutorKind } from './types.ts'

const schema = Type.Object(
  {
    kind: Type.Literal('seldon'),
    /** SeldonDeployment name: sent as the `seldon` routing header / metadata. */
    deployment: Type.Optional(Type.String({ minLength: 1 })),
    /** Its namespace: sent as the `namespace` routing header / metadata. */
    namespace: Type.Optional(Type.String({ minLength: 1 })),
    /** REST path of the predictions endpoint (default /api/v1.0/predictions, after the URL's own path). */
    path: Type.Optional(Type.String({ pattern: '^/' })),
    /** How the input travels: `ndarray` (REST default) or `tensor` (gRPC default). */
    data_format: Type.Optional(Type.Union([Type.Literal('ndarray'), Type.Literal('tensor')])),
    /** Feature names sent as data.names. */
    names: Type.Optional(Type.Array(Type.String())),
    /** Sent as meta.tags. */
    tags: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]))),
    ...remoteFields,
    ...commonModelFields,
  },
  { additionalProperties: false },
)

export interface SeldonSpec extends RemoteSettings {
  readonly path: string
  readonly format: SeldonFormat
  readonly names: readonly string[]
  readonly tags: Readonly<Record<string, string | number | boolean>> | undefined
}

export const seldonExecutorKind: ExecutorKind<SeldonSpec, Static<typeof schema>> = {
  kind: 'seldon',
  remote: true,
  schema,
  parse(entry, ctx) {
    const remote = parseRemote(entry, ctx)
    for (const field of ['inputs', 'outputs'] as const) {
      if (entry[field]?.length !== 1) ctx.problem(field, `declare exactly one ${field.slice(0, -1)}: a Seldon v1 message carries one tensor`)
    }
    const format = entry.data_format ?? (remote.protocol === 'grpc' ? 'tensor' : 'ndarray')
    // data.tensor carries doubles: strings would arrive as NaN.
    if (format === 'tensor' && entry.inputs?.[0]?.datatype === 'BYTES') {
      ctx.problem(entry.data_format ? 'data_format' : 'inputs', `a BYTES input cannot travel as data.tensor (numbers only${entry.data_format ? '' : ', the gRPC default'}): set data_format: ndarray`)
    }
    const headers: Record<string, string> = { ...remote.headers }
    if (entry.deployment) headers.seldon = entry.deployment
    if (entry.namespace) headers.namespace = entry.namespace
    for (const field of ['deployment', 'namespace'] as const) {
      const value = entry[field]
      if (value) checkHeader(ctx, field, field === 'deployment' ? 'seldon' : 'namespace', value, remote.protocol)
    }
    return {
      ...remote,
      headers,
      path: `${remote.basePath}${entry.path ?? '/api/v1.0/predictions'}`,
      format,
      names: entry.names ?? [],
      tags: entry.tags,
    }
  },
  files: (spec) => spec.tlsFiles,
  create(name, spec) {
    return new RemoteExecutor(name, 'seldon', spec, spec.protocol === 'grpc' ? seldonGrpc(spec) : seldonRest(spec, name))
  },
}

/** `tags`: the config's meta.tags as the wire carries them (google.protobuf.Values over gRPC), built once per adapter. */
function message(spec: SeldonSpec, inputs: readonly NamedTensor[], grpc: boolean, tags: object | undefined): object {
  const { name, tensor } = inputs[0]!
  if (spec.format === 'tensor') refuseInexact(tensor, name)
  const data = toSeldonData(tensor, spec.format, grpc, spec.names)
  return tags ? { data, meta: { tags } } : { data }
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER)

/**
 * data.tensor holds doubles: a 64-bit integer beyond ±(2^53 - 1) would reach the model
 * rounded. Refused instead (the client's input, so no verdict on the upstream's health).
 */
function refuseInexact(tensor: Tensor, name: string): void {
  const { data } = tensor
  if (!(data instanceof BigInt64Array || data instanceof BigUint64Array)) return
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!
    if (v > MAX_EXACT || v < -MAX_EXACT) {
      fail(inputNotCarried, name, `element ${i} is ${v}, beyond ±2^53: data.tensor carries doubles, so it would reach the model rounded`)
    }
  }
}

/** The one tensor of an answer, under the declared output's upstream name. */
function answer(res: unknown, outputName: string, grpc: boolean, maxBytes: number): WireOutputs {
  const msg = (res ?? {}) as { status?: { status?: unknown; info?: unknown; reason?: unknown }; data?: Record<string, unknown> }
  if (msg.status?.status === 'FAILURE' || msg.status?.status === 1) {
    throw new UpstreamError(ModelErrorCode.UPSTREAM_ERROR, `Seldon FAILURE: ${excerpt(String(msg.status.info ?? msg.status.reason ?? ''))}`)
  }
  return new Map([[outputName, fromSeldonData(msg.data, grpc, upstreamFailure, outputName, maxBytes)]])
}

function seldonRest(spec: SeldonSpec, model: string): ProtocolAdapter {
  const { upstream, release } = acquirePool(spec, model)
  return {
    fetchMetadata: () => Promise.resolve(null),
    async infer(inputs, outputs, signal) {
      const body = JSON.stringify(message(spec, inputs, false, spec.tags))
      return answer(await requestJson(upstream, { method: 'POST', path: spec.path, headers: spec.headers, body, signal }), outputs[0]!, false, spec.maxResponseBytes)
    },
    close: release,
  }
}

function seldonGrpc(spec: SeldonSpec): ProtocolAdapter {
  const methods = serviceMethods(SELDON_SERVICE)
  const { client, release } = acquireClient(spec)
  const metadata = metadataFrom(spec.headers)
  const tags = spec.tags && Object.fromEntries(Object.entries(spec.tags).map(([k, v]) => [k, toValue(v)]))
  return {
    fetchMetadata: () => Promise.resolve(null),
    async infer(inputs, outputs, signal, timeoutMs) {
      const res = await unary(client, methods.Predict!, message(spec, inputs, true, tags), metadata, timeoutMs, signal)
      return answer(res, outputs[0]!, true, spec.maxResponseBytes)
    },
    close: release,
  }
}
