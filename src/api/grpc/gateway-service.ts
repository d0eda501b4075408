// specserve.v1.Gateway: the native API over gRPC. Same request, same response shape
// and same error codes as POST /v1/ensembles/{name}/predict and the GET routes; tensors
// are specserve.v1.Tensor (src/tensor/specserve.ts).
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import { inputFailure } from '../../errors.ts'
import { newRequestId, type Gateway } from '../../gateway.ts'
import { inputSpec, type EnsembleRuntime } from '../../starter/ensemble.ts'
import { fromNativeTensor, toNativeTensor, type NativeTensorMsg, type Tensor, type TensorMap } from '../../tensor/index.ts'
import type { PredictResult } from '../../types.ts'
import { describeEnsemble, describeModel, listEnsembles } from '../native/describe.ts'
import { answer, servePredict } from './call.ts'
import type { NameRequestMsg, PredictRequestMsg } from './messages.ts'

type Unary<Req> = (call: ServerUnaryCall<Req, unknown>, callback: sendUnaryData<unknown>) => void

export function gatewayService(gateway: Gateway): UntypedServiceImplementation {
  const Predict: Unary<PredictRequestMsg> = (call, callback) =>
    servePredict(gateway, call as ServerUnaryCall<unknown, unknown>, callback, () => {
      const req = call.request
      const ens = gateway.ensemble(req.ensemble)
      return {
        request: { id: req.id || newRequestId(), ensemble: ens.name, inputs: readInputs(ens, req.inputs), budgetMs: req.budget_ms },
        respond: predictResponse,
      }
    })

  const ListEnsembles: Unary<object> = (call, callback) => answer(call, callback, () => ({ ensembles: listEnsembles(gateway) }))

  const GetEnsemble: Unary<NameRequestMsg> = (call, callback) =>
    answer(call, callback, () => {
      const ens = gateway.ensemble(call.request.name)
      const info = describeEnsemble(ens)
      return { ...info, description: ens.config.description ?? '', strategy: ens.strategyName, strategy_options: optionValues(ens.config.strategy.raw) }
    })

  const GetModel: Unary<NameRequestMsg> = (call, callback) =>
    answer(call, callback, () => {
      const info = describeModel(gateway, call.request.name)
      const stats = info.stats as { duration_ms: { mean: number | null } }
      return {
        ...info,
        inputs: info.inputs ?? [],
        outputs: info.outputs ?? [],
        stats: { ...stats, duration_ms: stats.duration_ms.mean === null ? null : stats.duration_ms },
      }
    })

  return { Predict, ListEnsembles, GetEnsemble, GetModel } as UntypedServiceImplementation
}

function readInputs(ens: EnsembleRuntime, inputs: Readonly<Record<string, NativeTensorMsg>>): TensorMap {
  const out: Record<string, Tensor> = {}
  for (const name in inputs) out[name] = fromNativeTensor(inputs[name] as NativeTensorMsg, inputSpec(ens, name), inputFailure)
  return out
}

function predictResponse(result: PredictResult): object {
  const outputs: Record<string, object> = {}
  if (result.outputs) for (const name in result.outputs) outputs[name] = toNativeTensor(result.outputs[name]!)
  return {
    id: result.id,
    ensemble: result.ensemble,
    strategy: result.strategy,
    outputs,
    decision: decisionMessage(result.decision),
    budget_ms: result.budget_ms,
    elapsed_ms: result.elapsed_ms,
    models: result.models,
  }
}

/** votes is uint32 on the wire: weighted or soft tallies go whole there and exact in weighted_votes. */
function decisionMessage(decision: PredictResult['decision']): object {
  const votes = decision.votes ?? {}
  let whole = true
  for (const key in votes) if (!Number.isInteger(votes[key])) whole = false
  if (whole) return { chosen: decision.chosen ?? undefined, reason: decision.reason, votes, weighted_votes: votes }
  const rounded: Record<string, number> = {}
  for (const key in votes) rounded[key] = Math.round(votes[key]!)
  return { chosen: decision.chosen ?? undefined, reason: decision.reason, votes: rounded, weighted_votes: votes }
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
