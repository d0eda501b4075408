// Per-call plumbing shared by both services: requests that failed to decode, the
// deadline as a budget, and client cancellation of the run.
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js'
import type { ServiceDefinition } from '@grpc/proto-loader'
import { GatewayError, inputFailure } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import { withIncomingMetadata } from '../../telemetry/tracing.ts'
import type { PredictRequest, PredictResult } from '../../types.ts'
import { principalOf } from '../../security/grpc.ts'
import { forCaller } from '../../security/redact.ts'
import { inputSpec, type EnsembleRuntime } from '../../starter/ensemble.ts'
import { fromNativeTensor, type NativeTensorMsg, type Tensor, type TensorMap } from '../../tensor/index.ts'
import { errorStatus, resultStatus } from './status.ts'

/** Marks a request whose bytes did not decode (set instead of throwing inside grpc-js). */
export const MALFORMED = Symbol('malformed')

/**
 * The same service, but a request that fails to decode reaches the handler as
 * `{[MALFORMED]: reason}`, so it is answered INVALID_ARGUMENT (BAD_REQUEST) like a bad
 * REST body, rather than grpc-js's generic INTERNAL.
 */
export function tolerantService(service: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {}
  for (const [name, method] of Object.entries(service)) {
    const decode = method.requestDeserialize
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes)
        } catch (err) {
          return { [MALFORMED]: (err as Error).message }
        }
      },
    }
  }
  return out as ServiceDefinition
}

/** A method's hand-written codec: request bytes to the handler's message, its answer to bytes. */
export interface MethodCodec<Req, Res> {
  readonly decode: (bytes: Buffer) => Req
  /** `framed`: after gRPC's 5-byte message prefix, as the fast unary path writes it (fast-unary.ts). */
  readonly encode: (answer: Res, framed?: boolean) => Buffer
}

/** The stream methods' responseSerialize: their replies arrive encoded (stream.ts encodes each, to answer one it cannot send with an error). */
export const encoded = (bytes: Buffer): Buffer => bytes

/** The service with these methods' proto-loader serializers replaced by hand-written codecs. */
export function withCodecs(service: ServiceDefinition, codecs: Readonly<Record<string, MethodCodec<unknown, never>>>): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = { ...service }
  for (const [name, codec] of Object.entries(codecs)) {
    const method = service[name]
    if (!method) throw new Error(`the service has no method ${name}`)
    out[name] = { ...method, requestDeserialize: codec.decode, responseSerialize: codec.encode } as unknown as ServiceDefinition[string]
  }
  return out as ServiceDefinition
}

/** Throws BAD_REQUEST for a request that did not decode. */
export function checkDecoded(request: object): void {
  if (MALFORMED in request) throw new GatewayError('BAD_REQUEST', `request message does not decode: ${String(request[MALFORMED])}`)
}

/** The status a request that did not decode is answered with (INVALID_ARGUMENT, BAD_REQUEST), or undefined for one that did. */
export function refusal(request: unknown): ReturnType<typeof errorStatus> | undefined {
  if (typeof request !== 'object' || request === null || !(MALFORMED in request)) return undefined
  try {
    checkDecoded(request)
  } catch (err) {
    return errorStatus(err)
  }
  return undefined
}

/**
 * Answers a unary call with what `produce` returns, or its error as a status; a request
 * that did not decode is INVALID_ARGUMENT even for a method that reads nothing from it.
 */
export function answer(call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>, produce: () => unknown): void {
  const refused = refusal(call.request)
  if (refused) return callback(refused)
  let value: unknown
  try {
    value = produce()
  } catch (err) {
    return callback(errorStatus(err))
  }
  callback(null, value)
}

/**
 * A unary call answered by `handler` through the callback, as grpc-js would call it, if its
 * request decoded; one that did not is answered with its refusal, as answer() answers it,
 * `handler` never seeing it (the standard services' handlers: standard-services.ts).
 */
export function answerWith(
  call: ServerUnaryCall<unknown, unknown>,
  callback: sendUnaryData<unknown>,
  handler: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void,
): void {
  const refused = refusal(call.request)
  if (refused) callback(refused)
  else handler(call, callback)
}

/**
 * Part of the deadline is kept back for the trip home: an answer decided exactly at the
 * client's deadline arrives after it, and the client's clock started before ours (the
 * grpc-timeout header is relative, sent once the stream opens). Measured on a loaded
 * 2-core box: the client gives up 1-15 ms before our copy of the deadline, so we keep
 * 10% of it, at least 5 ms and at most 50 ms (never more than half).
 */
export function replyMargin(remainingMs: number): number {
  return Math.min(remainingMs / 2, Math.max(5, Math.min(50, remainingMs * 0.1)))
}

/** Remaining ms of the call's deadline, minus the reply margin; undefined without a deadline. */
export function deadlineBudget(call: Pick<ServerUnaryCall<unknown, unknown>, 'getDeadline'>): number | undefined {
  const deadline = call.getDeadline()
  const at = deadline instanceof Date ? deadline.getTime() : deadline
  if (!Number.isFinite(at)) return undefined
  const remaining = at - Date.now()
  return remaining - replyMargin(remaining)
}

/** What servePredict reads of a unary call: grpc-js's ServerUnaryCall, or fast-unary.ts's FastCall. */
export type UnaryCallLike = Pick<ServerUnaryCall<unknown, unknown>, 'request' | 'metadata' | 'getDeadline' | 'cancelled'> & {
  once(event: 'cancelled', listener: () => void): unknown
}

/** What a service makes of its request message: the predict to run and how to answer it. */
export interface PredictCall<Reply = object> {
  readonly request: Pick<PredictRequest, 'id' | 'ensemble' | 'inputs' | 'budgetMs'>
  readonly respond: (result: PredictResult) => Reply
}

/**
 * Runs one predict for a unary call, the same way for every service: the call's deadline
 * is the budget, a client cancel (or a call cut off) cancels the run, a W3C traceparent in
 * the metadata parents the predict span (no-op with tracing off), and request errors and
 * failed predicts map to statuses. `build` (which may throw) translates the wire message.
 */
export function servePredict(gateway: Gateway, call: UnaryCallLike, callback: sendUnaryData<unknown>, build: () => PredictCall): void {
  let respond: PredictCall['respond']
  let pending: Promise<PredictResult>
  try {
    checkDecoded(call.request as object)
    const built = build()
    respond = built.respond
    const predict = { ...built.request, transportBudgetMs: deadlineBudget(call) }
    const run = withIncomingMetadata(call, () => gateway.start(predict))
    // Cancelled while its message was decoded (or right now): it is not waited for.
    if (call.cancelled) run.cancel()
    else call.once('cancelled', () => run.cancel())
    pending = run.result
  } catch (err) {
    return callback(errorStatus(err))
  }
  const principal = principalOf(call)
  pending.then(
    (settled) => {
      const result = forCaller(settled, principal)
      return result.error ? callback(resultStatus(result)) : callback(null, respond(result))
    },
    (err: unknown) => callback(errorStatus(err)),
  )
}

/** specserve.v1 input tensors (Predict and PredictStream) checked against the ensemble's declaration. */
export function readInputs(ens: EnsembleRuntime, inputs: Readonly<Record<string, NativeTensorMsg>>): TensorMap {
  const out: Record<string, Tensor> = {}
  for (const name in inputs) out[name] = fromNativeTensor(inputs[name] as NativeTensorMsg, inputSpec(ens, name), inputFailure)
  return out
}
