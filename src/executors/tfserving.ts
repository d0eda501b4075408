// `kind: tfserving` — a model behind TensorFlow Serving: REST (/v1/models/{m}:predict, the
// columnar "inputs" or row "instances" format) or gRPC (tensorflow.serving.PredictionService
// with ModelSpec name, version or version label, and signature_name). `method: classify` or
// `regress` calls :classify/:regress (Classify/Regress) with tf.Examples instead.
import Type, { type Static } from 'typebox'
import { serviceMethods, TFSERVING_SERVICE } from '../proto/index.ts'
import { batchRows, examplesJson, examplesProto, fromTensorProto, predictJson, toTensorProto, type TensorProto, type WireTensor } from '../tensor/index.ts'
import { commonModelFields } from './common.ts'
import { parseRemote, remoteFields, type RemoteSettings } from './remote/config.ts'
import { badResponse, inputNotCarried, upstreamFailure } from './remote/errors.ts'
import { RemoteExecutor, type ProtocolAdapter, type UpstreamMetadata } from './remote/executor.ts'
import { acquireClient, metadataFrom, unary } from './remote/grpc.ts'
import { acquirePool, requestJson } from './remote/http.ts'
import { tfSpecs } from './remote/metadata.ts'
import { withAnsweredVersion, type WireOutputs } from './remote/outputs.ts'
import { classifications, EXAMPLE_METHOD_METADATA, grpcPair, regressions, restPair, TF_METHODS, type TfMethod } from './tfserving-results.ts'
import type { ExecutorKind } from './types.ts'

const schema = Type.Object(
  {
    kind: Type.Literal('tfserving'),
    model: Type.String({ minLength: 1 }),
    /** Default serving_default. */
    signature: Type.Optional(Type.String({ minLength: 1 })),
    /** Call a version by label (e.g. `stable`) instead of by number; excludes `version`. */
    version_label: Type.Optional(Type.String({ minLength: 1 })),
    /** REST body format: `columnar` ("inputs"/"outputs", default) or `row` ("instances"/"predictions"). */
    rest_format: Type.Optional(Type.Union([Type.Literal('columnar'), Type.Literal('row')])),
    /** `predict` (default); `classify` or `regress` send tf.Examples, one per row, a feature per declared input. */
    method: Type.Optional(Type.Union(TF_METHODS.map((m) => Type.Literal(m)))),
    ...remoteFields,
    ...commonModelFields,
  },
  { additionalProperties: false },
)

export interface TfServingSpec extends RemoteSettings {
  readonly model: string
  readonly signature: string
  readonly versionLabel: string | undefined
  readonly rowFormat: boolean
  readonly method: TfMethod
}

export const tfservingExecutorKind: ExecutorKind<TfServingSpec, Static<typeof schema>> = {
  kind: 'tfserving',
  remote: true,
  schema,
  parse(entry, ctx) {
    const remote = parseRemote(entry, ctx)
    if (entry.version !== undefined && entry.version_label !== undefined) ctx.problem('version_label', 'give version or version_label, not both')
    if (entry.version !== undefined && !/^\d+$/.test(String(entry.version))) ctx.problem('version', 'TF Serving versions are integers')
    const method = entry.method ?? 'predict'
    if (method !== 'predict') {
      // The signature's input is a serialized tf.Example: the features can only come from YAML.
      if (!entry.inputs) ctx.problem('inputs', `method ${method} sends tf.Examples: declare the inputs (each becomes a feature of every example)`)
      if (entry.rest_format !== undefined) ctx.problem('rest_format', `rest_format applies to predict, not ${method}`)
    } else if (entry.rest_format !== undefined && remote.protocol === 'grpc') {
      ctx.warn('rest_format', 'rest_format applies to REST calls: this model is called over gRPC, which has no row or columnar form')
    }
    return { ...remote, model: entry.model, signature: entry.signature ?? 'serving_default', versionLabel: entry.version_label, rowFormat: entry.rest_format === 'row', method }
  },
  files: (spec) => spec.tlsFiles,
  create(name, spec) {
    return new RemoteExecutor(name, 'tfserving', spec, spec.protocol === 'grpc' ? tfGrpc(spec) : tfRest(spec, name))
  },
}

function tfMetadata(sigMap: unknown, signature: string, where: string, version: unknown): UpstreamMetadata {
  const sigs = (sigMap as { signature_def?: Record<string, { inputs?: object; outputs?: object }> } | undefined)?.signature_def
  const sig = sigs?.[signature]
  if (!sig) throw new Error(`${where}: no signature "${signature}" (has ${Object.keys(sigs ?? {}).join(', ') || 'none'})`)
  return {
    inputs: tfSpecs(sig.inputs as never, `${where}, inputs`),
    outputs: tfSpecs(sig.outputs as never, `${where}, outputs`),
    // An empty Int64Value reads as "0", which TF Serving never serves.
    version: version === undefined || version === null || version === '' || version === '0' || version === 0 ? undefined : String(version),
  }
}

// ---------------------------------------------------------------- REST

function tfRest(spec: TfServingSpec, model: string): ProtocolAdapter {
  const { upstream, release } = acquirePool(spec, model)
  const { signature, headers } = spec
  const base = `${spec.basePath}/v1/models/${encodeURIComponent(spec.model)}${
    spec.version !== undefined ? `/versions/${spec.version}` : spec.versionLabel ? `/labels/${encodeURIComponent(spec.versionLabel)}` : ''
  }`
  const method = spec.method
  if (method !== 'predict') {
    return {
      fetchMetadata: () => Promise.resolve(EXAMPLE_METHOD_METADATA[method]),
      async infer(inputs, _outputs, signal) {
        const body = `{"signature_name":${JSON.stringify(signature)},"examples":${examplesJson(inputs, inputNotCarried)}}`
        const res = await requestJson(upstream, { method: 'POST', path: `${base}:${method}`, headers, body, signal })
        const result = (res as { result?: unknown } | null)?.result
        if (!Array.isArray(result)) throw badResponse('no "result" list in the answer')
        return method === 'classify' ? classifications(result, batchRows(inputs), restPair) : regressions(result, batchRows(inputs))
      },
      close: release,
    }
  }
  return {
    async fetchMetadata(signal) {
      const body = (await requestJson(upstream, { method: 'GET', path: `${base}/metadata`, headers, signal })) as {
        model_spec?: { version?: unknown }
        metadata?: { signature_def?: unknown }
      }
      return tfMetadata(body?.metadata?.signature_def, signature, `metadata of ${spec.model}`, body?.model_spec?.version)
    },
    async infer(inputs, outputs, signal) {
      const body = predictJson(signature, inputs, spec.rowFormat, inputNotCarried)
      const res = await requestJson(upstream, { method: 'POST', path: `${base}:predict`, headers, body, signal })
      return spec.rowFormat ? fromPredictions(res, outputs) : fromColumnar(res, outputs)
    },
    close: release,
  }
}

function fromColumnar(res: unknown, wanted: readonly string[]): WireOutputs {
  const outputs = (res as { outputs?: unknown } | null)?.outputs
  if (outputs === undefined) throw badResponse('no "outputs" in the answer')
  const out = new Map<string, WireTensor>()
  // A signature with one output answers with the bare tensor.
  if (Array.isArray(outputs) || typeof outputs !== 'object' || outputs === null) {
    if (wanted.length !== 1) throw badResponse(`one unnamed output for ${wanted.length} declared`)
    out.set(wanted[0]!, { data: Array.isArray(outputs) ? outputs : [outputs] })
    return out
  }
  for (const [name, value] of Object.entries(outputs)) out.set(name, { data: Array.isArray(value) ? value : [value] })
  return out
}

function fromPredictions(res: unknown, wanted: readonly string[]): WireOutputs {
  const predictions = (res as { predictions?: unknown } | null)?.predictions
  if (!Array.isArray(predictions)) throw badResponse('no "predictions" list in the answer')
  const out = new Map<string, WireTensor>()
  const named = predictions.length > 0 && predictions[0] !== null && typeof predictions[0] === 'object' && !Array.isArray(predictions[0])
  if (!named) {
    if (wanted.length !== 1) throw badResponse(`unnamed predictions for ${wanted.length} declared outputs`)
    out.set(wanted[0]!, { data: predictions })
    return out
  }
  for (const name of wanted) {
    out.set(name, {
      data: predictions.map((p: unknown) => {
        if (p === null || typeof p !== 'object' || !(name in p)) throw badResponse(`a prediction lacks "${name}"`)
        return (p as Record<string, unknown>)[name]
      }),
    })
  }
  return out
}

// ---------------------------------------------------------------- gRPC

/** The model_spec a gRPC answer carries: the version that answered (REST answers name none). */
type Versioned = { readonly model_spec?: { readonly version?: { readonly value?: unknown } | null } | null }

/** The version a gRPC answer names: an empty Int64Value reads as "0", which TF Serving never serves. */
const versionIn = (res: Versioned): unknown => {
  const value = res.model_spec?.version?.value
  return value === '0' || value === 0 ? undefined : value
}

function tfGrpc(spec: TfServingSpec): ProtocolAdapter {
  const methods = serviceMethods(TFSERVING_SERVICE)
  const { client, release } = acquireClient(spec)
  const metadata = metadataFrom(spec.headers)
  const model_spec = {
    name: spec.model,
    signature_name: spec.signature,
    ...(spec.version !== undefined ? { version: { value: spec.version } } : {}),
    ...(spec.versionLabel !== undefined ? { version_label: spec.versionLabel } : {}),
  }
  const method = spec.method
  if (method !== 'predict') {
    return {
      fetchMetadata: () => Promise.resolve(EXAMPLE_METHOD_METADATA[method]),
      async infer(inputs, _outputs, signal, timeoutMs) {
        const request = { model_spec, input: examplesProto(inputs, inputNotCarried) }
        const rows = batchRows(inputs)
        if (method === 'classify') {
          const res = (await unary(client, methods.Classify!, request, metadata, timeoutMs, signal)) as { result?: { classifications?: { classes?: unknown[] }[] } } & Versioned
          return withAnsweredVersion(classifications((res.result?.classifications ?? []).map((c) => c.classes ?? []), rows, grpcPair), versionIn(res))
        }
        const res = (await unary(client, methods.Regress!, request, metadata, timeoutMs, signal)) as { result?: { regressions?: { value?: unknown }[] } } & Versioned
        return withAnsweredVersion(regressions((res.result?.regressions ?? []).map((r) => r.value ?? 0), rows), versionIn(res))
      },
      close: release,
    }
  }
  return {
    async fetchMetadata(signal, timeoutMs) {
      const res = (await unary(client, methods.GetModelMetadata!, { model_spec, metadata_field: ['signature_def'] }, metadata, timeoutMs, signal)) as {
        model_spec?: { version?: { value?: unknown } }
        metadata?: Record<string, unknown>
      }
      return tfMetadata(res.metadata?.signature_def, spec.signature, `metadata of ${spec.model}`, res.model_spec?.version?.value)
    },
    async infer(inputs, outputs, signal, timeoutMs) {
      const request = { model_spec, inputs: Object.fromEntries(inputs.map(({ name, tensor }) => [name, toTensorProto(tensor)])), output_filter: outputs }
      const res = (await unary(client, methods.Predict!, request, metadata, timeoutMs, signal)) as { outputs?: Record<string, TensorProto> } & Versioned
      const out = new Map<string, WireTensor>()
      const fills = { bytes: 0 } // one budget for the whole answer's fills, not one per output
      for (const [name, t] of Object.entries(res.outputs ?? {})) out.set(name, fromTensorProto(t, upstreamFailure, name, spec.maxResponseBytes, fills))
      return withAnsweredVersion(out, versionIn(res))
    },
    close: release,
  }
}
