// gRPC statuses as the remote members' client (grpc-channel.ts) reports them: the error a
// call ends with, and the spec's mappings of what an HTTP/2 answer without a status says (its
// HTTP status, a stream reset).
import { constants } from 'node:http2'
import { status as GrpcCode } from '@grpc/grpc-js'

/** gRPC status codes: grpc-js's enum, as the gateway's own gRPC frontends use it. */
export { GrpcCode }

/** A status code's name in the spec, or its number when it has none. */
export const codeName = (code: number): string => GrpcCode[code] ?? String(code)

/**
 * A call that ended without an answer: the gRPC status and its details; `local` when this
 * client ended it itself (its deadline, or an answer over its receive limit), not the upstream.
 */
export class GrpcCallError extends Error {
  readonly code: number
  readonly details: string
  readonly local: boolean
  constructor(code: number, details: string, local = false) {
    super(`${codeName(code)}: ${details}`)
    this.code = code
    this.details = details
    this.local = local
  }
}

/** HTTP statuses without a grpc-status, as the gRPC spec maps them. */
export function codeOfHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcCode.INTERNAL
    case 401:
      return GrpcCode.UNAUTHENTICATED
    case 403:
      return GrpcCode.PERMISSION_DENIED
    case 404:
      return GrpcCode.UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE
    default:
      return GrpcCode.UNKNOWN
  }
}

/** A peer's RST_STREAM error code, as the gRPC spec maps it. */
export function codeOfReset(rst: number): number {
  if (rst === constants.NGHTTP2_REFUSED_STREAM) return GrpcCode.UNAVAILABLE
  if (rst === constants.NGHTTP2_CANCEL) return GrpcCode.CANCELLED
  if (rst === constants.NGHTTP2_ENHANCE_YOUR_CALM) return GrpcCode.RESOURCE_EXHAUSTED
  if (rst === constants.NGHTTP2_INADEQUATE_SECURITY) return GrpcCode.PERMISSION_DENIED
  return GrpcCode.INTERNAL
}

/** grpc-message is percent-encoded; a malformed one is shown as sent. */
export function statusMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '')
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
