// Errors to gRPC statuses, through the same catalogue as REST (src/api/errors.ts).
// Every error carries its stable code in the `specserve-code` trailer (several codes
// share a gRPC status); a predict that ran and failed also carries its annotations, as
// the REST failure body in JSON, in the `specserve-result` trailer.
import { Metadata, type ServerErrorResponse, type StatusObject } from '@grpc/grpc-js'
import type { PredictResult } from '../../types.ts'
import { mapError, mapResultError, type MappedError } from '../errors.ts'
import { failureBody } from '../native/result.ts'

export const CODE_KEY = 'specserve-code'
export const RESULT_KEY = 'specserve-result'

export type GrpcError = Partial<StatusObject> & Partial<ServerErrorResponse>

export function errorStatus(err: unknown): GrpcError {
  return status(mapError(err))
}

export function resultStatus(result: PredictResult): GrpcError {
  const mapped = mapResultError(result)
  const error = status(mapped)
  // Non-binary metadata must be printable ASCII: escape anything else inside the JSON strings.
  const json = JSON.stringify(failureBody(result)).replace(/[^\x20-\x7e]/g, escapeChar)
  error.metadata!.set(RESULT_KEY, json)
  return error
}

function status(mapped: MappedError): GrpcError {
  const metadata = new Metadata()
  metadata.set(CODE_KEY, mapped.code)
  return { code: mapped.grpc, details: mapped.message, metadata }
}

const escapeChar = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
