// The grpc-timeout header, read as the gRPC protocol defines it: a positive integer of at most
// 8 digits and a unit. grpc-js finds a number anywhere in the value (`-1S` is its 1 s, `1.5S`
// its 5 s, `123456789S` its 23456789 s), so every call's header is read here first, and a
// malformed one refused before grpc-js misreads it (fast-unary.ts's hook sees every call).
import { status as Status } from '@grpc/grpc-js'
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import { refuse } from './status.ts'

const DEADLINE = /^(\d{1,8})([HMSmun])$/
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }
/**
 * The longest timeout grpc-js reads as it is: it takes a timeout's milliseconds `| 0`, so one
 * past 2^31 - 1 ms (24.8 days; grpc-go writes a 30-day deadline as `2592000S`) wraps negative
 * and the call fails at once with DEADLINE_EXCEEDED. Calls it serves get at most this.
 */
const GRPC_JS_MAX_TIMEOUT = '596H'
const GRPC_JS_MAX_TIMEOUT_MS = 596 * 3_600_000

/** A grpc-timeout in milliseconds, however long; undefined when malformed. */
export function timeoutMs(timeout: string | string[]): number | undefined {
  const match = typeof timeout === 'string' ? DEADLINE.exec(timeout) : null
  return match ? Number(match[1]) * (UNIT_MS[match[2] as string] as number) : undefined
}

/** A call grpc-js serves gets a timeout it reads as it is (`ms`: the header's, well-formed). */
export function capForGrpcJs(headers: IncomingHttpHeaders, ms: number): void {
  if (ms > GRPC_JS_MAX_TIMEOUT_MS) headers['grpc-timeout'] = GRPC_JS_MAX_TIMEOUT
}

/** A malformed grpc-timeout: INTERNAL (as grpc-go answers, and grpc-js when it finds no number), the stream closed. */
export function refuseTimeout(stream: ServerHttp2Stream, timeout: string | string[] | undefined): void {
  refuse(stream, Status.INTERNAL, `Invalid grpc-timeout value "${String(timeout)}"`)
}
