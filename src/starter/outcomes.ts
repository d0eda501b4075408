// What a predict's models and decision come to: a model's failure as its outcome, and the
// error a failed decision gives the request (one cause shared by every failure wins).
import { ModelError, ModelErrorCode } from '../errors.ts'
import { RAN_VERSION } from '../executors/types.ts'
import type { Decision, ErrorInfo, Outcome } from '../types.ts'

/** A model that threw or was refused, as its outcome (`skipped` when it never ran). */
export function failure(index: number, err: unknown, latencyMs: number): Outcome {
  const version = (err as { [RAN_VERSION]?: string } | undefined)?.[RAN_VERSION]
  if (err instanceof ModelError) {
    const error = { code: err.code, message: err.message }
    return err.skipped ? { status: 'skipped', index, error, latencyMs, version } : { status: 'error', index, error, latencyMs, version }
  }
  return { status: 'error', index, error: { code: ModelErrorCode.MODEL_FAILED, message: String((err as Error)?.message ?? err) }, latencyMs, version }
}

/** The request's error for a failed decision. */
export function failError(decision: Extract<Decision, { kind: 'fail' }>, commonCause: string | null, cancelled: boolean): ErrorInfo {
  if (cancelled) return { code: 'CANCELLED', message: 'cancelled before the answer: the client went away or the gateway is stopping' }
  if (decision.code === 'ALL_MODELS_FAILED' && commonCause === ModelErrorCode.OVERLOADED) {
    return { code: 'OVERLOADED', message: 'every model queue is full' }
  }
  if (decision.code === 'ALL_MODELS_FAILED' && commonCause === ModelErrorCode.WOULD_MISS_DEADLINE) {
    return { code: 'DEADLINE_EXCEEDED', message: 'the budget is too small for any model of the ensemble' }
  }
  switch (decision.code) {
    case 'ALL_MODELS_FAILED':
      return { code: decision.code, message: 'every model of the ensemble failed' }
    case 'DEADLINE_EXCEEDED':
      return { code: decision.code, message: 'no usable result by the deadline' }
    case 'NO_CONSENSUS':
      return { code: decision.code, message: 'the models did not reach a majority' }
  }
}

