// A bound on the calls with message compression (a grpc-encoding other than identity) open at
// once. grpc-js inflates every message of a received chunk at once, each up to
// grpc_max_receive_bytes, before any handler or admission limit sees it: a 4 KiB gzip of
// 4 MiB of zeros is a valid message, so a thousand such unary calls on one connection would
// hold 4 GiB. Uncompressed bytes cost the client as much as the server, and HTTP/2 flow
// control bounds them; compressed ones do not, so they are counted here and refused past
// server.grpc_max_compressed_calls (RESOURCE_EXHAUSTED, `specserve-code: OVERLOADED`: retry
// later, or send uncompressed). A stream counts as one call for as long as it is open; it
// inflates at most one chunk's messages at a time (grpc-js reads the next chunk only once
// the handler has taken them), and a chunk is one DATA frame (16 KiB by default).
import type { ServerHttp2Stream } from 'node:http2'
import { GatewayError } from '../../errors.ts'
import { errorStatus, refuse, type GrpcError } from './status.ts'

/** The compressed calls of one server: how many are open, and the answer to one past the bound. Built once per server. */
export class CompressedCalls {
  open = 0
  readonly max: number
  private readonly refusal: GrpcError
  /** One listener for every call's 'close' (no closure per call). */
  private readonly closed = (): void => {
    this.open--
  }

  constructor(max: number) {
    this.max = max
    this.refusal = errorStatus(new GatewayError('OVERLOADED', `more than ${max} calls with message compression at once (server.grpc_max_compressed_calls): retry later, or send the call uncompressed`))
  }

  /** Counts the call until its stream closes; false, counting nothing, when the bound is reached (refuse() answers it then). */
  admit(stream: ServerHttp2Stream): boolean {
    if (this.open >= this.max) return false
    this.open++
    stream.once('close', this.closed)
    return true
  }

  /** Answers a call past the bound with a status alone, and closes its stream. */
  refuse(stream: ServerHttp2Stream): void {
    const refusal = this.refusal
    refuse(stream, refusal.code as number, refusal.details as string, refusal.metadata)
  }
}
