// inference.GRPCInferenceService: the Open Inference Protocol V2 over gRPC. Each
// ensemble is a V2 model; conversions and the parameters carrying the decision and
// annotations are shared with the REST V2 routes (src/api/oip/).
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import { GatewayError, inputFailure } from '../../errors.ts'
import { newRequestId, type Gateway } from '../../gateway.ts'
import { inputSpec, type EnsembleRuntime } from '../../starter/ensemble.ts'
import { checkTensor, contentsField, fromContents, fromRaw, readOipHeader, type OipContents, type Tensor, type TensorMap } from '../../tensor/index.ts'
import type { PredictResult } from '../../types.ts'
import { ENSEMBLE_VERSION, modelMetadata, modelReady, requestedOutputs, resultParameters, serverMetadata, V2_BUDGET, v2Model, type ParameterValue } from '../oip/model.ts'
import { answer, servePredict, type PredictCall } from './call.ts'
import { encodeModelStreamInferResponse, type InferReply, type StreamInferReply } from './infer-codec.ts'
import { echoed, serveStream } from './stream.ts'
import { mapError, mapResultError } from '../errors.ts'
import { checkRequestId, readBudget } from '../native/request.ts'
import type { InferParameterMsg, ModelInferRequestMsg, NameRequestMsg } from './messages.ts'

type Unary<Req> = (call: ServerUnaryCall<Req, unknown>, callback: sendUnaryData<unknown>) => void

export function inferenceService(gateway: Gateway): UntypedServiceImplementation {
  const ServerLive: Unary<object> = (call, callback) => answer(call, callback, () => ({ live: true }))
  const ServerReady: Unary<object> = (call, callback) => answer(call, callback, () => ({ ready: gateway.readyForTraffic }))
  const ServerMetadata: Unary<object> = (call, callback) => answer(call, callback, serverMetadata)

  const ModelReady: Unary<NameRequestMsg> = (call, callback) => answer(call, callback, () => ({ ready: modelReady(gateway, call.request.name, call.request.version) }))

  const ModelMetadata: Unary<NameRequestMsg> = (call, callback) =>
    answer(call, callback, () => {
      const meta = modelMetadata(v2Model(gateway, call.request.name, call.request.version))
      return { ...meta, parameters: toParameters(meta.parameters) }
    })

  const ModelInfer: Unary<ModelInferRequestMsg> = (call, callback) =>
    servePredict(gateway, call as ServerUnaryCall<unknown, unknown>, callback, () => buildInfer(gateway, call.request))

  const ModelStreamInfer = serveStream<ModelInferRequestMsg, StreamInferReply>(gateway, {
    ensembleOf: (msg) => msg.model_name,
    build: (msg) => {
      const built = buildInfer(gateway, msg)
      return { request: built.request, respond: (result) => ({ response: built.respond(result) }) }
    },
    // Triton's stream carries only a message: ours starts with the stable code.
    failed: (msg, failure) => {
      const mapped = 'result' in failure ? mapResultError(failure.result) : mapError(failure.error)
      const id = 'result' in failure ? failure.result.id : echoed(msg.id)
      return { errorMessage: `${mapped.code}: ${mapped.message}`, modelName: echoed(msg.model_name), id }
    },
    encode: encodeModelStreamInferResponse,
  })

  return { ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata, ModelInfer, ModelStreamInfer } as UntypedServiceImplementation
}

/** A ModelInfer message's predict and its answer. */
function buildInfer(gateway: Gateway, req: ModelInferRequestMsg): PredictCall<InferReply> {
  // In the order every frontend reads a request (as the V2 REST route does): the ensemble, the id, the inputs, the outputs asked for, the budget.
  const ens = v2Model(gateway, req.model_name, req.model_version)
  const id = req.id ? checkRequestId(req.id, 'id') : newRequestId()
  const inputs = readInputs(ens, req)
  const outputs = requestedOutputs(ens, req.outputs.map((o) => o.name))
  const raw = req.raw_input_contents.length > 0
  return {
    request: { id, ensemble: ens.name, inputs, budgetMs: readBudget(ens, inputs, fromParameters(req.parameters).budget_ms, undefined, V2_BUDGET) },
    respond: (result) => inferResponse(result, outputs, raw),
  }
}

function readInputs(ens: EnsembleRuntime, req: ModelInferRequestMsg): TensorMap {
  const raw = req.raw_input_contents
  if (raw.length > 0 && raw.length !== req.inputs.length) {
    throw new GatewayError('BAD_INPUT', `raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs (all inputs raw, or none)`)
  }
  const out: Record<string, Tensor> = {}
  for (let i = 0; i < req.inputs.length; i++) {
    const input = req.inputs[i]!
    const spec = inputSpec(ens, input.name)
    if (Object.hasOwn(out, spec.name)) throw new GatewayError('BAD_INPUT', `input "${spec.name}" is given twice`)
    // grpc_predict_v2.proto: with raw_input_contents, no input may have contents (Triton
    // refuses it too); answering from one of the two would silently drop the other.
    if (raw.length > 0 && hasElements(input.contents)) {
      throw new GatewayError('BAD_INPUT', `input "${spec.name}" has contents and the request has raw_input_contents: give every input's data in one or the other`)
    }
    const shape = readOipHeader(spec, input.datatype, input.shape, inputFailure)
    const data = raw.length > 0 ? fromRaw(raw[i]!, spec.datatype, shape, inputFailure, spec.name) : fromContents(input.contents, spec.datatype, shape, inputFailure, spec.name)
    out[spec.name] = checkTensor({ datatype: spec.datatype, shape, data }, spec, inputFailure)
  }
  return out
}

/** Whether typed contents hold any element (an empty `contents` message carries no data). */
function hasElements(contents: OipContents | null): boolean {
  if (contents === null) return false
  for (const field in contents) if ((contents[field as keyof OipContents]?.length ?? 0) > 0) return true
  return false
}

/**
 * Outputs as raw bytes when the request used raw contents (what V2 client libraries do), or
 * when a datatype has no typed contents field (FP16); else typed. Written by infer-codec.ts.
 */
function inferResponse(result: PredictResult, names: readonly string[], rawRequested: boolean): InferReply {
  const outputs: [string, Tensor][] = []
  const tensors = result.outputs
  let raw = rawRequested
  if (tensors) {
    for (const name of names) {
      const tensor = tensors[name]
      if (!tensor) continue
      if (contentsField(tensor.datatype) === null) raw = true
      outputs.push([name, tensor])
    }
  }
  return { model_name: result.ensemble, model_version: ENSEMBLE_VERSION, id: result.id, parameters: resultParameters(result), outputs, raw }
}

function toParameters(params: Readonly<Record<string, ParameterValue>>): Record<string, InferParameterMsg> {
  const out: Record<string, InferParameterMsg> = {}
  for (const key in params) {
    const v = params[key]
    out[key] = typeof v === 'string' ? { string_param: v } : typeof v === 'boolean' ? { bool_param: v } : { double_param: v }
  }
  return out
}

function fromParameters(params: Readonly<Record<string, InferParameterMsg>>): Record<string, ParameterValue> {
  const out: Record<string, ParameterValue> = {}
  for (const key in params) {
    const p = params[key]!
    const choice = p.parameter_choice
    if (!choice) continue
    const v = p[choice]!
    out[key] = choice === 'int64_param' || choice === 'uint64_param' ? Number(v) : (v as ParameterValue)
  }
  return out
}
