// Errors to gRPC statuses, through the same catalogue as REST (src/api/errors.ts).
// Every error carries its stable code in the `specserve-code` trailer (several codes
// share a gRPC status); a predict that ran and failed also carries its annotations, as
// the REST failure body in JSON, in the `specserve-result` trailer (bounded: a reduced
// form past MAX_RESULT_TRAILER_BYTES).
import { Metadata, status as Status, type ServerErrorResponse, type StatusObject } from '@grpc/grpc-js'
import { constants, type ServerHttp2Stream } from 'node:http2'
import { GatewayError, type ErrorCode } from '../../errors.ts'
import type { PredictResult } from '../../types.ts'
import { mapError, mapResultError, type MappedError } from '../errors.ts'
import { failureBody } from '../native/result.ts'

export const CODE_KEY = 'specserve-code'
export const RESULT_KEY = 'specserve-result'

export type GrpcError = Partial<StatusObject> & Partial<ServerErrorResponse>

export function errorStatus(err: unknown): GrpcError {
  return status(mapError(err))
}

/** The status a long call ends with at shutdown: UNAVAILABLE with specserve-code NOT_READY, from the catalogue. */
export const shuttingDown = (what: string): GrpcError => errorStatus(new GatewayError('NOT_READY', `the gateway is shutting down: ${what}`))

export function resultStatus(result: PredictResult): GrpcError {
  const mapped = mapResultError(result)
  const error = status(mapped)
  error.metadata!.set(RESULT_KEY, resultTrailer(result, mapped))
  return error
}

/**
 * Most bytes the `specserve-result` trailer may take. gRPC C-core clients (grpcio,
 * tritonclient) fail a call whose metadata passes 16 KiB, and may past 8 KiB; a grpc-js
 * client's HTTP/2 session breaks, with every call on it. 7 KiB leaves the other trailers
 * (grpc-status, grpc-message, specserve-code) room under 8 KiB.
 */
const MAX_RESULT_TRAILER_BYTES = 7 * 1024

/**
 * The failure body as printable ASCII JSON; if over the limit, a reduced form marked
 * `"truncated": true`: without the per-model annotations and vote counts (they grow with
 * the ensemble, its models' error messages and the batch; the serving record has them all),
 * else only the code and the id, else only the code.
 */
function resultTrailer(result: PredictResult, mapped: MappedError): string {
  const full = asciiJson(failureBody(result))
  if (full.length <= MAX_RESULT_TRAILER_BYTES) return full
  const { id, ensemble, strategy, decision, budget_ms, elapsed_ms } = result
  const reduced = asciiJson({
    code: mapped.code,
    message: mapped.message,
    id,
    ensemble,
    strategy,
    outputs: null,
    decision: { chosen: decision.chosen, reason: decision.reason, votes: null },
    budget_ms,
    elapsed_ms,
    models: [],
    truncated: true,
  })
  if (reduced.length <= MAX_RESULT_TRAILER_BYTES) return reduced
  const least = asciiJson({ code: mapped.code, id, truncated: true })
  return least.length <= MAX_RESULT_TRAILER_BYTES ? least : asciiJson({ code: mapped.code, truncated: true })
}

/** Non-binary metadata must be printable ASCII: anything else inside the JSON strings is escaped. */
const asciiJson = (value: unknown): string => JSON.stringify(value).replace(/[^\x20-\x7e]/g, escapeChar)

function status(mapped: MappedError): GrpcError {
  return { code: mapped.grpc, details: mapped.message, metadata: codeMetadata(mapped.code) }
}

/**
 * The `specserve-code` trailer alone: built once per server for the refusals the gateway
 * answers on a call's stream itself (fast-unary.ts, stream-messages.ts), whose status and
 * message stay those grpc-js gives.
 */
export function codeMetadata(code: ErrorCode): Metadata {
  const metadata = new Metadata()
  metadata.set(CODE_KEY, code)
  return metadata
}

const escapeChar = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`

/**
 * The message of the INTERNAL status a request message gets whose compressed flag is set on a
 * call without compression: gRPC's HTTP/2 protocol has the flag 0 when grpc-encoding is
 * absent (or identity), and grpc-go and grpc-java refuse it so; grpc-js reads the bytes as
 * they are, and a predict would run on (or be refused for) bytes the client meant otherwise.
 */
export const compressedFlagRefusal = (flag: number): string => `Received a message with compressed flag ${flag} on a call without message compression (grpc-encoding absent or identity)`

/** How a request message is refused by its prefix; `tooLarge`: it carries the `specserve-code` PAYLOAD_TOO_LARGE (the server's `tooLarge` metadata). */
export interface PrefixRefusal {
  readonly code: number
  readonly details: string
  readonly tooLarge: boolean
}

/**
 * The refusal of a request message whose prefix gives `flag` and `length`, or undefined (no
 * allocation then): by its size first (over `max`, grpc_max_receive_bytes), as grpc-js and
 * grpc-go check it, then by its compressed flag on a call without compression (`uncompressed`).
 */
export function prefixRefusal(flag: number, length: number, max: number, uncompressed: boolean): PrefixRefusal | undefined {
  if (length > max) return { code: Status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${length} vs ${max})`, tooLarge: true }
  if (flag !== 0 && uncompressed) return { code: Status.INTERNAL, details: compressedFlagRefusal(flag), tooLarge: false }
  return undefined
}

const END_STREAM = { endStream: true }

/**
 * Answers a call on its HTTP/2 stream with a status alone (a trailers-only response: the
 * status in the response headers, and the stream's side ends), unless the stream is gone or
 * already answered (false then). For the calls answered without grpc-js (fast-unary.ts, read-limit.ts).
 */
export function respondStatus(stream: ServerHttp2Stream, code: number, details: string, metadata?: Metadata | null): boolean {
  if (stream.destroyed || stream.closed || stream.headersSent) return false
  // toWellFormed: encodeURI throws on a lone surrogate.
  const headers = { 'grpc-status': String(code), 'grpc-message': encodeURI(details.toWellFormed()), ':status': 200, 'content-type': 'application/grpc+proto', ...metadata?.toHttp2Headers() }
  try {
    stream.respond(headers, END_STREAM)
    return true
  } catch {
    stream.destroy() // its session went away under it: the client sees the call cut
    return false
  }
}

/** Closes a stream whose answer is sent (RST_STREAM NO_ERROR once it is out): the client may still be sending, and is no longer read. */
export function closeAnswered(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed) stream.close()
}

/**
 * Resets a stream whose answer has not gone out within the read limit (a client that never
 * opens its flow-control window), so it holds neither the stream, the answer buffered for it
 * nor a shutdown's drain. Its response headers are out, so no status can follow: RST_STREAM
 * CANCEL, which the client sees as CANCELLED.
 */
export function resetUntaken(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_CANCEL)
}

/** Answers with a status alone and closes the stream (respondStatus, then closeAnswered). */
export function refuse(stream: ServerHttp2Stream, code: number, details: string, metadata?: Metadata | null): void {
  respondStatus(stream, code, details, metadata)
  closeAnswered(stream)
}
