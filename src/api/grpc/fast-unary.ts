// The hot unary methods (Predict, ModelInfer) answered straight from their HTTP/2 stream.
// grpc-js's per-call machinery (an intercepting call, a listener chain, Metadata objects
// built from and back to headers, a deadline timer, several turns of the event loop)
// measured ~30 µs of server CPU per call against node:http2 answering the same bytes, a
// fifth of a whole gRPC predict. Here a call costs one object, one frame in and one out.
//
// It stays inside grpc-js's server: grpc-js still owns the listeners, TLS, sessions
// (keepalive, idle timeout, GOAWAY, shutdown), reflection, health and every other method.
// Only a call that is exactly the common case takes this path: one of these methods,
// uncompressed, and no interceptors; anything else goes to grpc-js as before. The handlers
// are the same functions grpc-js calls, guarded the same way on a gateway with an `auth`
// section (the guard reads `metadata` and `getAuthContext()`). The same hook bounds how long
// any call's one request message, or each message of a stream of many, may take to arrive,
// and its answers to go out (read-limit.ts), and refuses what grpc-js would misread on any call: a malformed
// grpc-timeout, a compressed flag on a call without compression (stream-messages.ts); and it
// bounds the calls with message compression open at once (compressed-calls.ts). The calls
// themselves are in fast-call.ts.
import type { Server } from '@grpc/grpc-js'
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import { FastCall, ignore, type FastLimits, type FastMethod } from './fast-call.ts'
import { watchCompressedFlag, watchGrpcJsRead } from './read-limit.ts'
import { watchStreamMessages } from './stream-messages.ts'
import { capForGrpcJs, refuseTimeout, timeoutMs } from './grpc-timeout.ts'

export type { FastLimits, FastMethod } from './fast-call.ts'

/** grpc-js internals this path hooks (server.js, 1.14): the per-stream handlers it installs on bind, and its idle-connection bookkeeping. */
type StreamHandler = (this: Server, extra: readonly unknown[], stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void
interface GrpcJsServer {
  _channelzHandler?: StreamHandler
  _streamHandler?: StreamHandler
  onStreamOpened?: (stream: ServerHttp2Stream) => void
}

/**
 * Serves `methods` (by path) on this path for every server grpc-js binds from now on, and
 * watches the request of every other call, or each message of a stream of many (`limits.read`).
 * False when this grpc-js has not the internals it needs: every call then goes to grpc-js,
 * and no request is bounded in time but by its deadline.
 */
export function installFastUnary(server: Server, methods: ReadonlyMap<string, FastMethod>, limits: FastLimits): boolean {
  const internals = server as unknown as GrpcJsServer
  const opened = internals.onStreamOpened
  if (typeof opened !== 'function' || typeof internals._channelzHandler !== 'function' || typeof internals._streamHandler !== 'function') return false
  for (const name of ['_channelzHandler', '_streamHandler'] as const) {
    const original = internals[name] as StreamHandler
    internals[name] = function (this: Server, extra, stream, headers) {
      const path = headers[':path'] as string
      const timeout = headers['grpc-timeout']
      const ms = timeout === undefined ? Infinity : timeoutMs(timeout)
      const grpc = isGrpc(headers['content-type'])
      if (ms === undefined && grpc) return refuseTimeout(answeredHere(this, opened, stream), timeout)
      const encoding = headers['grpc-encoding']
      const uncompressed = encoding === undefined || encoding === 'identity'
      const method = extra.length === 0 && grpc && uncompressed ? methods.get(path) : undefined
      const now = Date.now()
      const readBy = now + limits.read.timeoutMs
      // ms is undefined here only for a call that is not gRPC: grpc-js answers it (415).
      if (method === undefined || ms === undefined) {
        if (!uncompressed && grpc && !limits.compressed.admit(stream)) return limits.compressed.refuse(answeredHere(this, opened, stream))
        if (timeout !== undefined && ms !== undefined) capForGrpcJs(headers, ms)
        const requests = limits.streaming.requests.has(path)
        const answers = !requests && limits.streaming.answers.has(path)
        if (!requests) watchGrpcJsRead(stream, readBy, limits.read, !answers)
        original.call(this, extra, stream, headers)
        // A server-streaming call's answers are timed each (its one request is above).
        if (requests || answers) watchStreamMessages(stream, limits, uncompressed)
        else if (uncompressed) watchCompressedFlag(stream)
        return
      }
      opened.call(this, stream) // a connection with a call open is not idle
      const deadline = now + ms // Infinity without a grpc-timeout
      new FastCall(stream, headers, method, deadline, deadline < readBy ? deadline : readBy, limits)
    }
  }
  return true
}

/** A call refused here, before grpc-js sees it: counted as grpc-js counts every call it answers, a client gone meanwhile ignored. */
function answeredHere(server: Server, opened: (stream: ServerHttp2Stream) => void, stream: ServerHttp2Stream): ServerHttp2Stream {
  opened.call(server, stream)
  stream.once('error', ignore)
  return stream
}

/** A content type grpc-js serves (it answers any other 415). */
const isGrpc = (type: string | undefined): boolean => type !== undefined && type.startsWith('application/grpc')
