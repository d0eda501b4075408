// specserve.v1.Gateway: the native API over gRPC. Same request, same response shape
// and same error codes as POST /v1/ensembles/{name}/predict and the GET routes; tensors
// are specserve.v1.Tensor (src/tensor/specserve.ts).
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import { newRequestId, type Gateway } from '../../gateway.ts'
import type { PredictResult } from '../../types.ts'
import { describeEnsemble, listEnsembles, modelDescription } from '../native/describe.ts'
import { answer, readInputs, servePredict, type PredictCall } from './call.ts'
import { encodeStreamReply, type StreamErrorInfo, type StreamReply } from './predict-codec.ts'
import { echoed, serveStream } from './stream.ts'
import { mapError, mapResultError } from '../errors.ts'
import { checkRequestId, readBudget } from '../native/request.ts'
import { failureBody } from '../native/result.ts'
import { principalOf } from '../../security/grpc.ts'
import type { NameRequestMsg, PredictRequestMsg } from './messages.ts'

type Unary<Req> = (call: ServerUnaryCall<Req, unknown>, callback: sendUnaryData<unknown>) => void

export function gatewayService(gateway: Gateway): UntypedServiceImplementation {
  const Predict: Unary<PredictRequestMsg> = (call, callback) =>
    servePredict(gateway, call as ServerUnaryCall<unknown, unknown>, callback, () => buildPredict(gateway, call.request))

  const ListEnsembles: Unary<object> = (call, callback) => answer(call, callback, () => ({ ensembles: listEnsembles(gateway) }))

  const GetEnsemble: Unary<NameRequestMsg> = (call, callback) =>
    answer(call, callback, () => {
      const ens = gateway.ensemble(call.request.name)
      const info = describeEnsemble(ens)
      return { ...info, description: ens.config.description ?? '', strategy: ens.strategyName, strategy_options: optionValues(ens.config.strategy.raw) }
    })

  const GetModel: Unary<NameRequestMsg> = (call, callback) =>
    answer(call, callback, () => {
      const { info, details } = modelDescription(gateway, call.request.name, principalOf(call))
      const stats = info.stats as { duration_ms: { mean: number | null } }
      return {
        ...info,
        ...details,
        details_json: details ? JSON.stringify(details) : '',
        inputs: info.inputs ?? [],
        outputs: info.outputs ?? [],
        stats: { ...stats, duration_ms: stats.duration_ms.mean === null ? null : stats.duration_ms },
      }
    })

  const PredictStream = serveStream<PredictRequestMsg, StreamReply>(gateway, {
    ensembleOf: (msg) => msg.ensemble,
    build: (msg) => {
      const built = buildPredict(gateway, msg)
      return { request: built.request, respond: (result) => ({ id: result.id, result }) }
    },
    // A message that did not decode has no id to echo, nor one refused for its length.
    failed: (msg, failure) => ('result' in failure ? { id: failure.result.id, error: resultErrorInfo(failure.result) } : { id: echoed(msg.id), error: errorInfo(failure.error) }),
    encode: encodeStreamReply,
  })

  return { Predict, PredictStream, ListEnsembles, GetEnsemble, GetModel } as UntypedServiceImplementation
}

/** A Predict message's predict; the result itself is the answer (predict-codec.ts writes it). */
function buildPredict(gateway: Gateway, req: PredictRequestMsg): PredictCall<PredictResult> {
  // In the order every frontend reads a request: the ensemble, the id, the inputs, the budget.
  const ens = gateway.ensemble(req.ensemble)
  const id = req.id ? checkRequestId(req.id, 'id') : newRequestId()
  const inputs = readInputs(ens, req.inputs)
  return { request: { id, ensemble: ens.name, inputs, budgetMs: readBudget(ens, inputs, req.budget_ms, undefined) }, respond: (result) => result }
}

function errorInfo(err: unknown): StreamErrorInfo {
  const mapped = mapError(err)
  return { code: mapped.code, message: mapped.message, status: mapped.grpc, resultJson: '' }
}

function resultErrorInfo(result: PredictResult): StreamErrorInfo {
  const mapped = mapResultError(result)
  return { code: mapped.code, message: mapped.message, status: mapped.grpc, resultJson: JSON.stringify(failureBody(result)) }
}

/** Strategy options as specserve.v1.OptionValue: scalars as themselves, anything else as JSON text. */
function optionValues(options: Readonly<Record<string, unknown>>): Record<string, object> {
  const out: Record<string, object> = {}
  for (const key in options) {
    const v = options[key]
    out[key] = typeof v === 'number' ? { number_value: v } : typeof v === 'boolean' ? { bool_value: v } : { string_value: typeof v === 'string' ? v : JSON.stringify(v) }
  }
  return out
}
