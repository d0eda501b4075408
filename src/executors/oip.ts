// `kind: oip` — a model behind the Open Inference Protocol V2 (MLServer, Seldon Core v2,
// KServe, Triton), over REST (/v2/models/{m}/infer) or gRPC (inference.GRPCInferenceService,
// the same proto the gateway's own V2 frontend serves). Tensors go out as JSON (REST) or
// typed contents (gRPC) through src/tensor/oip.ts; answers may come back raw.
import Type, { type Static } from 'typebox'
import { INFERENCE_SERVICE, serviceMethods } from '../proto/index.ts'
import { datatypeName, fail, fromRaw, isDataType, readShape, toContents, toRaw, toOipJson, wireFromContents, type NamedTensor, type OipContents, type WireTensor } from '../tensor/index.ts'
import { commonModelFields } from './common.ts'
import { checkHeader, parseRemote, remoteFields, type RemoteSettings } from './remote/config.ts'
import { badResponse, upstreamFailure } from './remote/errors.ts'
import { RemoteExecutor, type ProtocolAdapter, type UpstreamMetadata } from './remote/executor.ts'
import { acquireClient, metadataFrom, unary } from './remote/grpc.ts'
import { acquirePool, requestJson } from './remote/http.ts'
import { v2Specs } from './remote/metadata.ts'
import { withAnsweredVersion, type WireOutputs } from './remote/outputs.ts'
import type { ExecutorKind } from './types.ts'

const schema = Type.Object(
  {
    kind: Type.Literal('oip'),
    /** The model's name on the upstream. */
    model: Type.String({ minLength: 1 }),
    /** Seldon Core v2 routing: sent as the `seldon-model` header / metadata (e.g. `iris` or `flow.pipeline`). */
    seldon_model: Type.Optional(Type.String({ minLength: 1 })),
    ...remoteFields,
    ...commonModelFields,
  },
  { additionalProperties: false },
)

export interface OipSpec extends RemoteSettings {
  readonly model: string
}

export const oipExecutorKind: ExecutorKind<OipSpec, Static<typeof schema>> = {
  kind: 'oip',
  remote: true,
  schema,
  parse(entry, ctx) {
    const remote = parseRemote(entry, ctx)
    if (entry.seldon_model) checkHeader(ctx, 'seldon_model', 'seldon-model', entry.seldon_model, remote.protocol)
    const headers = entry.seldon_model ? { ...remote.headers, 'seldon-model': entry.seldon_model } : remote.headers
    return { ...remote, headers, model: entry.model }
  },
  files: (spec) => spec.tlsFiles,
  create(name, spec) {
    return new RemoteExecutor(name, 'oip', spec, spec.protocol === 'grpc' ? oipGrpc(spec) : oipRest(spec, name))
  },
}

function oipRest(spec: OipSpec, model: string): ProtocolAdapter {
  const { upstream, release } = acquirePool(spec, model)
  const path = `${spec.basePath}/v2/models/${encodeURIComponent(spec.model)}${spec.version === undefined ? '' : `/versions/${encodeURIComponent(spec.version)}`}`
  const headers = spec.headers
  return {
    async fetchMetadata(signal) {
      return v2Metadata(await requestJson(upstream, { method: 'GET', path, headers, signal }), `metadata of ${spec.model}`)
    },
    async infer(inputs, outputs, signal) {
      const body = JSON.stringify({ inputs: inputs.map(({ name, tensor }) => toOipJson(name, tensor)), outputs: outputs.map((name) => ({ name })) })
      return jsonOutputs(await requestJson(upstream, { method: 'POST', path: `${path}/infer`, headers, body, signal }))
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

function jsonOutputs(body: unknown): WireOutputs {
  const outputs = (body as { outputs?: unknown } | null)?.outputs
  if (!Array.isArray(outputs)) throw badResponse('no "outputs" list in the answer')
  const out = new Map<string, WireTensor>()
  for (const t of outputs as { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown }[]) {
    if (typeof t?.name !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data)) throw badResponse('an output lacks name, shape or data')
    refuseTwice(out, t.name)
    out.set(t.name, { datatype: typeof t.datatype === 'string' ? t.datatype : undefined, shape: readShape(t.shape, upstreamFailure, t.name), data: t.data })
  }
  return withAnsweredVersion(out, (body as { model_version?: unknown }).model_version)
}

/** An output named twice in one answer: which copy the upstream meant, nobody can say (the last one would win silently). */
function refuseTwice(outputs: ReadonlyMap<string, WireTensor>, name: string): void {
  if (outputs.has(name)) throw badResponse(`the answer has two outputs named ${JSON.stringify(name)}`)
}

function oipGrpc(spec: OipSpec): ProtocolAdapter {
  const methods = serviceMethods(INFERENCE_SERVICE)
  const { client, release } = acquireClient(spec)
  const metadata = metadataFrom(spec.headers)
  const version = spec.version ?? ''
  return {
    async fetchMetadata(signal, timeoutMs) {
      const res = await unary(client, methods.ModelMetadata!, { name: spec.model, version }, metadata, timeoutMs, signal)
      return v2Metadata(res, `metadata of ${spec.model}`)
    },
    async infer(inputs, outputs, signal, timeoutMs) {
      const request = { model_name: spec.model, model_version: version, ...grpcInputs(inputs), outputs: outputs.map((name) => ({ name })) }
      return grpcOutputs(await unary(client, methods.ModelInfer!, request, metadata, timeoutMs, signal))
    },
    close: release,
  }
}

/** Typed contents, as V2 servers expect by default; raw contents when a datatype has no contents field (FP16). */
function grpcInputs(inputs: readonly NamedTensor[]): object {
  const raw = inputs.some(({ tensor }) => tensor.datatype === 'FP16')
  const tensors = inputs.map(({ name, tensor }) => ({ name, datatype: tensor.datatype, shape: tensor.shape, contents: raw ? null : toContents(tensor) }))
  return raw ? { inputs: tensors, raw_input_contents: inputs.map(({ tensor }) => toRaw(tensor)) } : { inputs: tensors }
}

interface GrpcOutput {
  name?: string
  datatype?: string
  shape?: (string | number)[]
  contents?: OipContents | null
}

function grpcOutputs(res: unknown): WireOutputs {
  const { outputs, raw_output_contents: raw, model_version: version } = (res ?? {}) as { outputs?: GrpcOutput[]; raw_output_contents?: Uint8Array[]; model_version?: unknown }
  if (!Array.isArray(outputs)) throw badResponse('no outputs in the answer')
  const out = new Map<string, WireTensor>()
  outputs.forEach((t, i) => {
    const name = t.name ?? ''
    refuseTwice(out, name)
    const datatype = t.datatype ?? ''
    const shape = readShape(t.shape ?? [], upstreamFailure, name)
    if (raw && raw.length > 0) {
      const bytes = raw[i]
      if (!bytes) throw badResponse(`output "${name}": no raw contents`)
      if (!isDataType(datatype)) fail(upstreamFailure, name, `datatype ${datatypeName(datatype)} is not supported`)
      out.set(name, { datatype, shape, data: fromRaw(bytes, datatype, shape, upstreamFailure, name) })
    } else {
      out.set(name, wireFromContents(datatype, shape, t.contents, upstreamFailure, name))
    }
  })
  return withAnsweredVersion(out, version)
}
