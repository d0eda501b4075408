import { ModelError, ModelErrorCode } from '../../errors.ts'

/** A ModelError from an upstream call, saying whether trying again could help. */
export class UpstreamError extends ModelError {
  /** Connection refused or reset, 502/503/504, gRPC UNAVAILABLE: another attempt may succeed. */
  readonly retryable: boolean
  constructor(code: ModelErrorCode, message: string, retryable = false) {
    super(code, message)
    this.retryable = retryable
  }
}

export const badResponse = (message: string): UpstreamError => new UpstreamError(ModelErrorCode.UPSTREAM_BAD_RESPONSE, message)

export const unavailable = (message: string): UpstreamError => new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, message, true)

/** Short, single-line excerpt of an upstream's error body for the annotation. */
export function excerpt(text: string, max = 200): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > max ? `${line.slice(0, max)}…` : line
}
