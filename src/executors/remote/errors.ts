import { ModelError, ModelErrorCode } from '../../errors.ts'
import type { Failure } from '../../tensor/index.ts'

/** A ModelError from an upstream call, saying whether trying again could help and whose fault it is. */
export class UpstreamError extends ModelError {
  /** Connection refused or reset, 502/503/504, gRPC UNAVAILABLE: another attempt may succeed. */
  readonly retryable: boolean
  /**
   * The request's input was refused (HTTP 400/413/422, gRPC INVALID_ARGUMENT,
   * FAILED_PRECONDITION, OUT_OF_RANGE, or an input the protocol cannot carry): it says
   * nothing about the upstream's health, so it never counts towards opening the circuit.
   */
  readonly causedByInput: boolean
  constructor(code: ModelErrorCode, message: string, retryable = false, causedByInput = false) {
    super(code, message)
    this.retryable = retryable
    this.causedByInput = causedByInput
  }
}

export const badResponse = (message: string): UpstreamError => new UpstreamError(ModelErrorCode.UPSTREAM_BAD_RESPONSE, message)

/** An upstream's answer that does not decode is the upstream's fault: UPSTREAM_BAD_RESPONSE. */
export const upstreamFailure: Failure = Object.freeze({ role: 'output', error: badResponse, upstream: true })

/**
 * A request's input the upstream's protocol cannot carry as given (a 64-bit integer Seldon's
 * doubles would round, inputs whose rows tf.Examples cannot split): refused before the call,
 * with no verdict on the upstream's health, so one client's inputs cannot open the circuit.
 */
export const inputNotCarried: Failure = Object.freeze({ role: 'input', error: (message: string) => new UpstreamError(ModelErrorCode.MODEL_FAILED, message, false, true) })

export const unavailable = (message: string): UpstreamError => new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, message, true)

/**
 * An upstream's error body as a message: the `error`, `message` or `detail` string of a JSON
 * body (TF Serving, MLServer, KServe), else an excerpt of the text.
 */
export function upstreamMessage(text: string): string {
  if (text.startsWith('{')) {
    try {
      const body = JSON.parse(text) as Record<string, unknown>
      const message = [body.error, body.message, body.detail].find((v) => typeof v === 'string')
      if (typeof message === 'string') return excerpt(message)
    } catch {
      // not JSON after all: the excerpt below
    }
  }
  return excerpt(text)
}

/** Short, single-line excerpt of an upstream's text for an annotation. */
export function excerpt(text: string, max = 200): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > max ? `${line.slice(0, max)}…` : line
}
