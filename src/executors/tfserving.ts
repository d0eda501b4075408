// `kind: tfserving` — a model behind TensorFlow Serving: REST (/v1/models/{m}:predict, the
// columnar "inputs" or row "instances" format) or gRPC (tensorflow.serving.PredictionService
// with ModelSpec name, version or version label, and signature_name). `method: classify` or
// `regress` calls :classify/:regress (Classify/Regress) with tf.Examples instead.
import Type from 'typebox'
import { plainData, toNested } from '../tensor.ts'
import type { Tensor } from '../types.ts'
import { commonModelFields } from './common.ts'
import { decodeLittleEndian, encodeLittleEndian } from './remote/binary.ts'
import { checkRemote, remoteFields, remoteSettings, type RemoteModelConfig, type RemoteSettings } from './remote/config.ts'
import { badResponse } from './remote/errors.ts'
import { RemoteExecutor, type ProtocolAdapter, type UpstreamInput, type UpstreamMetadata } from './remote/executor.ts'
import { acquireClient, loadProtos, metadataFrom, serviceMethods, unary } from './remote/grpc.ts'
import { acquirePool, requestJson } from './remote/http.ts'
import { TF_TO_V2, V2_TO_TF, tfSpecs } from './remote/metadata.ts'
import type { RawOutputs, RawTensor } from './remote/tensors.ts'
import {
  EXAMPLE_METHOD_METADATA,
  TF_METHODS,
  batchRows,
  classifications,
  examplesJson,
  examplesProto,
  grpcPair,
  regressions,
  restPair,
  type TfMethod,
} from './tfserving-examples.ts'
import type { ExecutorFactory } from './types.ts'

export interface TfServingModelConfig extends RemoteModelConfig {
  readonly kind: 'tfserving'
  readonly model: string
  /** Default serving_default. */
  readonly signature?: string
  /** Call a version by label (e.g. `stable`) instead of by number; excludes `version`. */
  readonly version_label?: string
  /** REST body format: `columnar` ("inputs"/"outputs", default) or `row` ("instances"/"predictions"). */
  readonly rest_format?: 'columnar' | 'row'
  /** `predict` (default); `classify` or `regress` send tf.Examples, one per row, a feature per declared input. */
  readonly method?: TfMethod
}

const schema = Type.Object(
  {
    kind: Type.Literal('tfserving'),
    model: Type.String({ minLength: 1 }),
    signature: Type.Optional(Type.String({ minLength: 1 })),
    version_label: Type.Optional(Type.String({ minLength: 1 })),
    rest_format: Type.Optional(Type.Union([Type.Literal('columnar'), Type.Literal('row')])),
    method: Type.Optional(Type.Union(TF_METHODS.map((m) => Type.Literal(m)))),
    ...remoteFields,
    ...commonModelFields,
  },
  { additionalProperties: false },
)

const DEFAULT_SIGNATURE = 'serving_default'

export const tfservingExecutorKind: ExecutorFactory<TfServingModelConfig> = {
  kind: 'tfserving',
  schema,
  check(config, env) {
    const problems = checkRemote(config, env.baseDir)
    if (config.version !== undefined && config.version_label !== undefined) problems.push({ field: 'version_label', message: 'give version or version_label, not both' })
    if (config.version !== undefined && !/^\d+$/.test(String(config.version))) problems.push({ field: 'version', message: 'TF Serving versions are integers' })
    const method = config.method ?? 'predict'
    if (method !== 'predict') {
      // The signature's input is a serialized tf.Example: the features can only come from YAML.
      if (!config.inputs) problems.push({ field: 'inputs', message: `method ${method} sends tf.Examples: declare the inputs (each becomes a feature of every example)` })
      if (config.rest_format !== undefined) problems.push({ field: 'rest_format', message: `rest_format applies to predict, not ${method}` })
    }
    return problems
  },
  create(name, config, env) {
    const settings = remoteSettings(config, env.baseDir)
    const adapter = settings.protocol === 'grpc' ? tfGrpc(config, settings) : tfRest(config, settings)
    return new RemoteExecutor(name, 'tfserving', config, settings, adapter)
  },
}

function tfMetadata(sigMap: unknown, signature: string, where: string, version: unknown): UpstreamMetadata {
  const sigs = (sigMap as { signature_def?: Record<string, { inputs?: object; outputs?: object }> } | undefined)?.signature_def
  const sig = sigs?.[signature]
  if (!sig) throw new Error(`${where}: no signature "${signature}" (has ${Object.keys(sigs ?? {}).join(', ') || 'none'})`)
  return {
    inputs: tfSpecs(sig.inputs as never, `${where}, inputs`),
    outputs: tfSpecs(sig.outputs as never, `${where}, outputs`),
    version: version === undefined || version === null || version === '' ? undefined : String(version),
  }
}

// ---------------------------------------------------------------- REST

function tfRest(config: TfServingModelConfig, s: RemoteSettings): ProtocolAdapter {
  const { upstream, release } = acquirePool(s)
  const signature = config.signature ?? DEFAULT_SIGNATURE
  const base = `${s.basePath}/v1/models/${encodeURIComponent(config.model)}${
    config.version !== undefined ? `/versions/${String(config.version)}` : config.version_label ? `/labels/${encodeURIComponent(config.version_label)}` : ''
  }`
  const row = config.rest_format === 'row'
  const method = config.method ?? 'predict'
  if (method !== 'predict') {
    return {
      fetchMetadata: () => Promise.resolve(EXAMPLE_METHOD_METADATA[method]),
      async infer(inputs, _outputs, signal) {
        const body = `{"signature_name":${JSON.stringify(signature)},"examples":${examplesJson(inputs)}}`
        const res = await requestJson(upstream, { method: 'POST', path: `${base}:${method}`, headers: s.headers, body, signal })
        const result = (res as { result?: unknown } | null)?.result
        if (!Array.isArray(result)) throw badResponse('no "result" list in the answer')
        return method === 'classify' ? classifications(result, batchRows(inputs), restPair) : regressions(result, batchRows(inputs))
      },
      close: release,
    }
  }
  return {
    async fetchMetadata(signal) {
      const body = (await requestJson(upstream, { method: 'GET', path: `${base}/metadata`, headers: s.headers, signal })) as {
        model_spec?: { version?: unknown }
        metadata?: { signature_def?: unknown }
      }
      return tfMetadata(body?.metadata?.signature_def, signature, `metadata of ${config.model}`, body?.model_spec?.version)
    },
    async infer(inputs, outputs, signal) {
      const body = JSON.stringify(row ? { signature_name: signature, instances: instances(inputs) } : { signature_name: signature, inputs: columnar(inputs) })
      const res = await requestJson(upstream, { method: 'POST', path: `${base}:predict`, headers: s.headers, body, signal })
      return row ? fromPredictions(res, outputs) : fromColumnar(res, outputs)
    },
    close: release,
  }
}

function columnar(inputs: readonly UpstreamInput[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const { name, tensor } of inputs) out[name] = toNested(tensor)
  return out
}

/** Row format: one entry per batch row; an object per row when there are several inputs. */
function instances(inputs: readonly UpstreamInput[]): unknown[] {
  const nested = inputs.map(({ tensor }) => toNested(tensor) as unknown[])
  if (inputs.length === 1) return nested[0]!
  const rows = nested[0]!.length
  return Array.from({ length: rows }, (_, i) => Object.fromEntries(inputs.map(({ name }, k) => [name, nested[k]![i]])))
}

function fromColumnar(res: unknown, wanted: readonly string[]): RawOutputs {
  const outputs = (res as { outputs?: unknown } | null)?.outputs
  if (outputs === undefined) throw badResponse('no "outputs" in the answer')
  const out = new Map<string, RawTensor>()
  // A signature with one output answers with the bare tensor.
  if (Array.isArray(outputs) || typeof outputs !== 'object' || outputs === null) {
    if (wanted.length !== 1) throw badResponse(`one unnamed output for ${wanted.length} declared`)
    out.set(wanted[0]!, { data: Array.isArray(outputs) ? outputs : [outputs] })
    return out
  }
  for (const [name, value] of Object.entries(outputs)) out.set(name, { data: Array.isArray(value) ? value : [value] })
  return out
}

function fromPredictions(res: unknown, wanted: readonly string[]): RawOutputs {
  const predictions = (res as { predictions?: unknown } | null)?.predictions
  if (!Array.isArray(predictions)) throw badResponse('no "predictions" list in the answer')
  const out = new Map<string, RawTensor>()
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

const PROTO_FILES = ['tensorflow/serving/prediction_service.proto']
const SERVICE = 'tensorflow.serving.PredictionService'

/** TensorProto typed field for each V2 datatype when tensor_content is not used. */
const TYPED_FIELD: Readonly<Record<string, string>> = {
  FP32: 'float_val', FP64: 'double_val', INT32: 'int_val', INT16: 'int_val', INT8: 'int_val', UINT8: 'int_val', UINT16: 'int_val',
  INT64: 'int64_val', BOOL: 'bool_val', BYTES: 'string_val', UINT32: 'uint32_val', UINT64: 'uint64_val',
}

function tfGrpc(config: TfServingModelConfig, s: RemoteSettings): ProtocolAdapter {
  const methods = serviceMethods(loadProtos(PROTO_FILES), SERVICE)
  const { client, release } = acquireClient(s)
  const metadata = metadataFrom(s.headers)
  const signature = config.signature ?? DEFAULT_SIGNATURE
  const model_spec = {
    name: config.model,
    signature_name: signature,
    ...(config.version !== undefined ? { version: { value: Number(config.version) } } : {}),
    ...(config.version_label !== undefined ? { version_label: config.version_label } : {}),
  }
  const method = config.method ?? 'predict'
  if (method !== 'predict') {
    return {
      fetchMetadata: () => Promise.resolve(EXAMPLE_METHOD_METADATA[method]),
      async infer(inputs, _outputs, signal, timeoutMs) {
        const request = { model_spec, input: examplesProto(inputs) }
        const rows = batchRows(inputs)
        if (method === 'classify') {
          const res = (await unary(client, methods.Classify!, request, metadata, timeoutMs, signal)) as { result?: { classifications?: { classes?: unknown[] }[] } }
          return classifications((res.result?.classifications ?? []).map((c) => c.classes ?? []), rows, grpcPair)
        }
        const res = (await unary(client, methods.Regress!, request, metadata, timeoutMs, signal)) as { result?: { regressions?: { value?: unknown }[] } }
        return regressions((res.result?.regressions ?? []).map((r) => r.value ?? 0), rows)
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
      return tfMetadata(res.metadata?.signature_def, signature, `metadata of ${config.model}`, res.model_spec?.version?.value)
    },
    async infer(inputs, outputs, signal, timeoutMs) {
      const request = { model_spec, inputs: Object.fromEntries(inputs.map(({ name, tensor }) => [name, tensorProto(tensor)])), output_filter: outputs }
      const res = (await unary(client, methods.Predict!, request, metadata, timeoutMs, signal)) as { outputs?: Record<string, TfTensor> }
      const out = new Map<string, RawTensor>()
      for (const [name, t] of Object.entries(res.outputs ?? {})) out.set(name, fromTensorProto(t, name))
      return out
    },
    close: release,
  }
}

export interface TfTensor {
  dtype?: string
  tensor_shape?: { dim?: { size?: number }[] }
  tensor_content?: Uint8Array
  [field: string]: unknown
}

/** Numbers travel packed in tensor_content (as TF's own clients send them); strings in string_val. */
function tensorProto(tensor: Tensor): object {
  const dims = tensor.shape.map((size) => ({ size }))
  const dtype = V2_TO_TF[tensor.datatype]
  if (tensor.datatype === 'BYTES') return { dtype, tensor_shape: { dim: dims }, string_val: plainData(tensor).map((v) => Buffer.from(String(v), 'utf8')) }
  return { dtype, tensor_shape: { dim: dims }, tensor_content: encodeLittleEndian(tensor) }
}

export function fromTensorProto(t: TfTensor, name: string): RawTensor {
  const what = `output "${name}"`
  const datatype = TF_TO_V2[t.dtype ?? '']
  if (!datatype) throw badResponse(`${what}: dtype ${t.dtype ?? '(none)'} is not supported`)
  const shape = (t.tensor_shape?.dim ?? []).map((d) => Number(d.size))
  if (t.tensor_content && t.tensor_content.byteLength > 0) return { datatype, shape, data: decodeLittleEndian(t.tensor_content, datatype, what) }
  const field = TYPED_FIELD[datatype]
  let values = (field ? t[field] : undefined) as unknown[] | undefined
  if (!values) throw badResponse(`${what}: datatype ${datatype} is not supported`)
  // TensorProto allows one value to stand for a whole tensor filled with it.
  const count = shape.reduce((n, d) => n * d, 1)
  if (values.length === 1 && count > 1) values = new Array<unknown>(count).fill(values[0])
  return { datatype, shape, data: values }
}
