// Maps anything thrown or returned on the predict path to one catalogue entry, so REST,
// OIP V2 and gRPC agree on codes and statuses.
import { ErrorCatalogue, GatewayError, isErrorCode, type ErrorCode } from '../errors.ts'
import type { PredictResult } from '../types.ts'

export interface MappedError {
  readonly code: ErrorCode
  readonly message: string
  readonly http: number
  readonly grpc: number
  readonly details?: Readonly<Record<string, unknown>> | undefined
}

/** Fastify's own errors (body parsing, limits) carry a statusCode and an FST_ code. */
interface HttpishError {
  statusCode?: number
  code?: string
  message?: string
}

export const UNREAD_CONTENT_TYPE = 'the body is not of a content-type this route reads: application/json (predict, infer, reload), application/octet-stream or application/onnx (a model upload)'

export function mapError(err: unknown): MappedError {
  if (err instanceof GatewayError) return entry(err.code, err.message, err.details)
  const e = err as HttpishError
  if (e?.statusCode === 413) return entry('PAYLOAD_TOO_LARGE', e.message ?? 'request body too large')
  // Fastify says only "Unsupported Media Type": say which content-types the routes read.
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return entry('BAD_REQUEST', UNREAD_CONTENT_TYPE)
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) return entry('BAD_REQUEST', e.message ?? 'bad request')
  return entry('INTERNAL', 'internal error')
}

/** A predict that ran but failed as a whole: the result carries the annotations. */
export function mapResultError(result: PredictResult): MappedError {
  const code = result.error && isErrorCode(result.error.code) ? result.error.code : 'INTERNAL'
  return entry(code, result.error?.message ?? 'predict failed')
}

function entry(code: ErrorCode, message: string, details?: Readonly<Record<string, unknown>>): MappedError {
  const { http, grpc } = ErrorCatalogue[code]
  return { code, message, http, grpc, details }
}
