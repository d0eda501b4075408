// Bidirectional predict streams: specserve.v1.Gateway/PredictStream and the V2
// GRPCInferenceService/ModelStreamInfer. A high-rate client pays grpc-js's per-call cost
// (an HTTP/2 stream, headers, trailers) once per stream instead of once per predict. Each
// message runs like its unary call (same request, same admission, its own budget capped
// by the call's deadline) and is answered as soon as it is decided, so not in the order
// sent. A message that fails is answered with its error and the call goes on. The call
// ends once the client has half-closed and every message is answered; cancelling it (or
// the connection dropping) cancels what is still running. With an `auth` section, the
// call's credentials open it (src/security/grpc.ts) and each message is asked for its
// ensemble's scope and a token of the caller's rate limit, as its unary call would be;
// results are redacted for a caller without `debug`.
import type { ServerDuplexStream } from '@grpc/grpc-js'
import type { Gateway } from '../../gateway.ts'
import { admit, type Principal } from '../../security/guard.ts'
import { principalOf } from '../../security/grpc.ts'
import { forCaller } from '../../security/redact.ts'
import { refusalsOf, type Refusals } from '../../security/refusals.ts'
import type { Run } from '../../starter/run.ts'
import { withIncomingMetadata } from '../../telemetry/tracing.ts'
import type { PredictResult } from '../../types.ts'
import { checkDecoded, deadlineBudget, type PredictCall } from './call.ts'

/** What a stream makes of its messages: the predict (as its unary call would), and the reply to a failure. */
export interface StreamProtocol<Msg, Reply> {
  /** The ensemble a (decoded) message names, for the caller's scope. */
  ensembleOf(msg: Msg): string
  /** The message's predict and how to answer it; throws for a bad message. `transportBudgetMs` is added here. */
  build(msg: Msg): PredictCall<Reply>
  /** The reply to a message that failed: the error thrown while building or starting it, or the result of a predict that failed. */
  failed(msg: Msg, failure: { readonly error: unknown } | { readonly result: PredictResult }): Reply
}

export function serveStream<Msg extends object, Reply>(gateway: Gateway, protocol: StreamProtocol<Msg, Reply>): (call: ServerDuplexStream<Msg, Reply>) => void {
  return (call) => new StreamCall(gateway, protocol, call).listen()
}

class StreamCall<Msg extends object, Reply> {
  private readonly gateway: Gateway
  private readonly protocol: StreamProtocol<Msg, Reply>
  private readonly call: ServerDuplexStream<Msg, Reply>
  private readonly runs = new Set<Run>()
  private readonly principal: Principal | undefined
  private readonly refusals: Refusals
  private halfClosed = false
  private gone = false

  constructor(gateway: Gateway, protocol: StreamProtocol<Msg, Reply>, call: ServerDuplexStream<Msg, Reply>) {
    this.gateway = gateway
    this.protocol = protocol
    this.call = call
    this.principal = principalOf(call)
    this.refusals = refusalsOf(gateway)
  }

  listen(): void {
    const call = this.call
    call.on('data', (msg: Msg) => this.start(msg))
    call.on('end', () => {
      this.halfClosed = true
      this.endIfDone()
    })
    // The client cancelled, or the call broke: nobody is left to answer.
    call.on('cancelled', () => this.abandon())
    call.on('error', () => this.abandon())
  }

  private start(msg: Msg): void {
    if (this.gone) return
    let run: Run
    let respond: PredictCall<Reply>['respond']
    try {
      checkDecoded(msg)
      if (this.principal !== undefined) this.admit(this.principal, this.protocol.ensembleOf(msg))
      const built = this.protocol.build(msg)
      respond = built.respond
      const request = { ...built.request, transportBudgetMs: deadlineBudget(this.call) }
      run = withIncomingMetadata(this.call.metadata, () => this.gateway.start(request))
    } catch (error) {
      this.reply(this.protocol.failed(msg, { error }))
      return
    }
    this.runs.add(run)
    run.result.then(
      (settled) => {
        const result = forCaller(settled, this.principal)
        this.settled(run, result.error ? this.protocol.failed(msg, { result }) : respond(result))
      },
      (error: unknown) => this.settled(run, this.protocol.failed(msg, { error })),
    )
  }

  /** Asks the caller's scope and rate limit for one message; a refusal is counted as a unary one would be. */
  private admit(principal: Principal, ensemble: string): void {
    try {
      admit(principal, 'predict', ensemble)
    } catch (err) {
      this.refusals.count('grpc', err)
      throw err
    }
  }

  private settled(run: Run, reply: Reply): void {
    this.runs.delete(run)
    this.reply(reply)
    this.endIfDone()
  }

  private reply(reply: Reply): void {
    if (!this.gone) this.call.write(reply)
  }

  private endIfDone(): void {
    if (this.halfClosed && this.runs.size === 0 && !this.gone) {
      this.gone = true
      this.call.end()
    }
  }

  private abandon(): void {
    if (this.gone) return
    this.gone = true
    for (const run of this.runs) run.cancel()
  }
}
