// Bidirectional predict streams: specserve.v1.Gateway/PredictStream and the V2
// GRPCInferenceService/ModelStreamInfer. A high-rate client pays grpc-js's per-call cost
// (an HTTP/2 stream, headers, trailers) once per stream instead of once per predict. Each
// message runs like its unary call (same request, same admission) but with its own budget
// (its budget_ms, else the ensemble default) capped by the call's deadline, and is answered
// as soon as it is decided, so not in the order sent. A message that fails is answered with
// its error and the call goes on. The call ends once the client has half-closed and every
// message is answered; cancelling it (or the connection dropping, or the server's shutdown
// grace running out) cancels what is still running. A call whose deadline had passed when it
// arrived is refused as a unary call is (DEADLINE_EXCEEDED, its stable code), none of its
// messages read: each would be refused for it, and the call end OK. With an `auth` section, the
// call's credentials open it (src/security/grpc.ts) and each message asks the guard again
// with them, as its unary call would: the policy as it is now (a key a reload removed, a
// JWT past its exp), the ensemble's scope, a token of the caller's rate limit. Results are
// redacted for a caller without `debug`. A client that does not read its answers is not
// read from either (backpressure), so replies cannot pile up in memory; nor is one whose
// messages wait for the guard (MAX_CHECKING of them: a JWT not in the cache, verified against
// a key set being fetched), so they cannot all be held and then start at once. At shutdown
// (open-calls.ts) a call ends once its messages running are answered, UNAVAILABLE with
// specserve-code NOT_READY, rather than stay open to the grace's end: a client then opens its
// next stream elsewhere, and an idle stream does not hold the stop. Replies are encoded
// here, not by grpc-js: one grpc-js cannot send (over grpc_max_send_bytes, or an encoder
// failure) would end the call and cancel every other message on it, so such a reply
// becomes that message's error instead.
import type { ServerDuplexStream } from '@grpc/grpc-js'
import type { Gateway } from '../../gateway.ts'
import { GatewayError } from '../../errors.ts'
import type { Principal } from '../../security/guard.ts'
import { recheck } from '../../security/grpc.ts'
import { forCaller } from '../../security/redact.ts'
import { pastDeadline } from '../../starter/budget.ts'
import type { Run } from '../../starter/run.ts'
import { withIncomingMetadata } from '../../telemetry/tracing.ts'
import type { PredictResult } from '../../types.ts'
import { checkDecoded, deadlineBudget, type PredictCall } from './call.ts'
import { openCalls } from './open-calls.ts'
import { errorStatus, shuttingDown } from './status.ts'
import { withinIdBytes } from '../native/request.ts'

/** What a stream makes of its messages: the predict (as its unary call would), and the reply to a failure. */
export interface StreamProtocol<Msg, Reply> {
  /** The ensemble a (decoded) message names, for the caller's scope. */
  ensembleOf(msg: Msg): string
  /** The message's predict and how to answer it; throws for a bad message. The stream's deadline is added here (`deadlineCapMs`). */
  build(msg: Msg): PredictCall<Reply>
  /** The reply to a message that failed: the error thrown while building or starting it, or the result of a predict that failed. */
  failed(msg: Msg, failure: { readonly error: unknown } | { readonly result: PredictResult }): Reply
  /** A reply's bytes (the method's responseSerialize passes them through). */
  encode(reply: Reply): Buffer
}

/**
 * A message's field (its id, a V2 model name) as an error reply echoes it: only text a request
 * id may be as long as (MAX_ID_BYTES of UTF-8), else ''. An id refused for its length would
 * make its error reply as large as the message, past grpc_max_send_bytes.
 */
export function echoed(value: unknown): string {
  return typeof value === 'string' && withinIdBytes(value) ? value : ''
}

export function serveStream<Msg extends object, Reply>(gateway: Gateway, protocol: StreamProtocol<Msg, Reply>): (call: ServerDuplexStream<Msg, Buffer>) => void {
  return (call) => new StreamCall(gateway, protocol, call).listen()
}

/** Messages of one call waiting for the guard at most before the call is read no more until one is through. */
export const MAX_CHECKING = 16

/** A message with no field to echo, for the last error reply (`failed` reads fields that may be absent: a message that did not decode has none). */
const NOTHING = Object.freeze({})

class StreamCall<Msg extends object, Reply> {
  private readonly gateway: Gateway
  private readonly protocol: StreamProtocol<Msg, Reply>
  private readonly call: ServerDuplexStream<Msg, Buffer>
  private readonly maxSendBytes: number
  private readonly runs = new Set<Run>()
  /** Messages waiting for the guard (a JWT verified again): the call does not end before they are answered. */
  private checking = 0
  private halfClosed = false
  /** The server is shutting down: the call ends once nothing runs on it. */
  private closing = false
  /** Takes the call off the gateway's open calls (open-calls.ts). */
  private untrack: () => void = noop
  /** Written replies wait in the call's buffer (the client is not reading): not read from until 'drain'. */
  private draining = false
  /** The call is paused, for `draining` or `checking` at MAX_CHECKING. */
  private paused = false
  private gone = false
  private readonly drained = (): void => {
    this.draining = false
    this.flow()
  }

  constructor(gateway: Gateway, protocol: StreamProtocol<Msg, Reply>, call: ServerDuplexStream<Msg, Buffer>) {
    this.gateway = gateway
    this.protocol = protocol
    this.call = call
    // grpc-js keeps the limit the server was built with; a reloaded value would let an answer past our check and end the call.
    this.maxSendBytes = gateway.startedWith.server.grpc_max_send_bytes
  }

  listen(): void {
    const call = this.call
    // Its deadline had passed on arrival (deadlineBudget is above 0 for any time left): nothing can run on it.
    const budget = deadlineBudget(call)
    if (budget !== undefined && budget <= 0) {
      this.gone = true
      call.emit('error', errorStatus(pastDeadline()))
      return
    }
    call.on('data', (msg: Msg) => this.start(msg))
    call.on('end', () => {
      this.halfClosed = true
      this.endIfDone()
    })
    // The client cancelled, or the call broke: nobody is left to answer.
    call.on('cancelled', () => this.abandon())
    call.on('error', () => this.abandon())
    this.untrack = openCalls(this.gateway).track(this)
  }

  private start(msg: Msg): void {
    if (this.gone) return
    let caller: Principal | Promise<Principal> | undefined
    try {
      checkDecoded(msg)
      caller = recheck(this.call, this.protocol.ensembleOf(msg))
    } catch (error) {
      this.sendFailure(msg, error)
      return
    }
    if (!(caller instanceof Promise)) return this.run(msg, caller)
    if (++this.checking === MAX_CHECKING) this.flow()
    caller.then(
      (principal) => {
        this.checked()
        if (!this.gone) this.run(msg, principal)
        this.endIfDone()
      },
      (error: unknown) => {
        // Its reply first: if the client is not reading, the call stays paused without a resume between.
        this.sendFailure(msg, error)
        this.checked()
        this.endIfDone()
      },
    )
  }

  private checked(): void {
    if (this.checking-- === MAX_CHECKING) this.flow()
  }

  /** Pauses the call while it must not be read (see the top of this file), resumes it once it may. */
  private flow(): void {
    const hold = this.draining || this.checking >= MAX_CHECKING
    if (hold === this.paused) return
    this.paused = hold
    if (hold) this.call.pause()
    else this.call.resume()
  }

  private run(msg: Msg, principal: Principal | undefined): void {
    let run: Run
    let respond: PredictCall<Reply>['respond']
    try {
      const built = this.protocol.build(msg)
      respond = built.respond
      // The stream's deadline caps each message's budget; unlike a unary call's, it is not the budget.
      const request = { ...built.request, deadlineCapMs: deadlineBudget(this.call) }
      run = withIncomingMetadata(this.call, () => this.gateway.start(request))
    } catch (error) {
      this.sendFailure(msg, error)
      return
    }
    this.runs.add(run)
    let result: PredictResult | undefined
    run.result
      .then((settled) => {
        result = forCaller(settled, principal)
        return result.error ? this.protocol.failed(msg, { result }) : respond(result)
      })
      .then(
        (reply) => this.settled(run, msg, reply, result),
        (error: unknown) => this.settled(run, msg, this.protocol.failed(msg, { error }), result),
      )
  }

  private settled(run: Run, msg: Msg, reply: Reply, result: PredictResult | undefined): void {
    this.runs.delete(run)
    this.send(msg, reply, result)
    this.endIfDone()
  }

  /** The error reply to a message refused before it ran (as too large to send, that error with nothing echoed). */
  private sendFailure(msg: Msg, error: unknown): void {
    this.send(msg, this.protocol.failed(msg, { error }), undefined, error)
  }

  /**
   * `result`: the predict the reply answers, if one ran (a reply it cannot send then keeps its
   * id and annotations); `failure`: the error `reply` says, if it is an error reply.
   */
  private send(msg: Msg, reply: Reply, result?: PredictResult, failure?: unknown): void {
    if (this.gone) return
    let bytes: Buffer
    try {
      bytes = this.protocol.encode(reply)
      if (bytes.length > this.maxSendBytes) {
        throw new GatewayError('RESPONSE_TOO_LARGE', `the answer encodes to ${bytes.length} bytes, over server.grpc_max_send_bytes (${this.maxSendBytes})`)
      }
    } catch (error) {
      try {
        bytes = this.errorBytes(msg, failure ?? error, result)
      } catch (err) {
        // Not even its error can be sent: nothing sensible is left to say on this call.
        this.abandon()
        this.call.destroy(err as Error)
        return
      }
    }
    // The client is not reading: stop reading its messages until it does.
    if (!this.call.write(bytes) && !this.draining) {
      this.draining = true
      this.flow()
      this.call.once('drain', this.drained)
    }
  }

  /**
   * The error reply for a reply that could not be sent: for a predict that ran, its result
   * as a failure (its id and annotations, without the outputs); else, or if that is too
   * large as well, the error alone; if even that is (a 1 KiB id echoed under a small limit),
   * the error with nothing of the message. Throws if that cannot be sent either.
   */
  private errorBytes(msg: Msg, error: unknown, result: PredictResult | undefined): Buffer {
    if (result) {
      const info = error instanceof GatewayError ? { code: error.code, message: error.message } : { code: 'INTERNAL', message: 'the answer could not be encoded' }
      try {
        const bytes = this.protocol.encode(this.protocol.failed(msg, { result: { ...result, outputs: null, error: info } }))
        if (bytes.length <= this.maxSendBytes) return bytes
      } catch {
        // the error alone, below
      }
    }
    try {
      const bytes = this.protocol.encode(this.protocol.failed(msg, { error }))
      if (bytes.length <= this.maxSendBytes) return bytes
      // The same error with nothing of the message echoed (its id, a V2 model name): what failed stays said.
      const alone = this.protocol.encode(this.protocol.failed(NOTHING as Msg, { error }))
      if (alone.length <= this.maxSendBytes) return alone
      return this.lastReply(new GatewayError('RESPONSE_TOO_LARGE', `the error reply encodes to ${alone.length} bytes, over server.grpc_max_send_bytes (${this.maxSendBytes})`))
    } catch {
      return this.lastReply(new GatewayError('INTERNAL', 'the answer could not be encoded'))
    }
  }

  /** `error` with nothing of the message. Over the limit still, the caller ends the call. */
  private lastReply(error: GatewayError): Buffer {
    const bytes = this.protocol.encode(this.protocol.failed(NOTHING as Msg, { error }))
    if (bytes.length > this.maxSendBytes) throw new GatewayError('RESPONSE_TOO_LARGE', `even the error reply is over server.grpc_max_send_bytes (${this.maxSendBytes})`)
    return bytes
  }

  drain(): void {
    this.closing = true
    this.endIfDone()
  }

  private endIfDone(): void {
    if (this.gone || this.runs.size > 0 || this.checking > 0) return
    if (this.halfClosed) {
      this.leave()
      this.call.end()
    } else if (this.closing) {
      this.leave()
      this.call.emit('error', shuttingDown('open a new stream'))
    }
  }

  private abandon(): void {
    if (this.gone) return
    this.leave()
    for (const run of this.runs) run.cancel()
  }

  private leave(): void {
    this.gone = true
    this.untrack()
  }
}

function noop(): void {}
