// specserve.v1.Gateway/PredictStream: many predicts over one bidirectional call. A
// high-rate client pays grpc-js's per-call cost (HTTP/2 stream, headers, trailers) once
// instead of per predict. Each message runs like a unary Predict (same request, same
// admission, its own budget capped by the call's deadline) and is answered, by id, as
// soon as it is decided. A message that fails is answered with its error; the call goes
// on. The call ends once the client has half-closed and every message is answered;
// cancelling it cancels what is still running. With an `auth` section, the call's
// credentials open it, and each message is asked for its ensemble's scope and counted
// against the caller's rate limit, as a unary Predict would be.
import type { ServerDuplexStream } from '@grpc/grpc-js'
import { newRequestId, type Gateway } from '../../gateway.ts'
import type { Run } from '../../starter/run.ts'
import { withIncomingMetadata } from '../../telemetry/tracing.ts'
import type { PredictResult } from '../../types.ts'
import { admit, type Principal } from '../../security/guard.ts'
import { principalOf } from '../../security/grpc.ts'
import { forCaller } from '../../security/redact.ts'
import { refusalsOf, type Refusals } from '../../security/refusals.ts'
import { mapError, mapResultError } from '../errors.ts'
import { failureBody } from '../native/result.ts'
import { checkDecoded, deadlineBudget, readInputs } from './call.ts'
import type { PredictRequestMsg } from './messages.ts'
import type { StreamErrorInfo, StreamReply } from './predict-codec.ts'

type StreamCall = ServerDuplexStream<PredictRequestMsg, StreamReply>

export function predictStream(gateway: Gateway): (call: StreamCall) => void {
  return (call) => new PredictStreamCall(gateway, call).listen()
}

class PredictStreamCall {
  private readonly gateway: Gateway
  private readonly call: StreamCall
  private readonly runs = new Set<Run>()
  private readonly principal: Principal | undefined
  private readonly refusals: Refusals
  private halfClosed = false
  private gone = false

  constructor(gateway: Gateway, call: StreamCall) {
    this.gateway = gateway
    this.call = call
    this.principal = principalOf(call)
    this.refusals = refusalsOf(gateway)
  }

  listen(): void {
    const call = this.call
    call.on('data', (msg: PredictRequestMsg) => this.start(msg))
    call.on('end', () => {
      this.halfClosed = true
      this.endIfDone()
    })
    // The client cancelled, or the call broke: nobody is left to answer.
    call.on('cancelled', () => this.abandon())
    call.on('error', () => this.abandon())
  }

  private start(msg: PredictRequestMsg): void {
    if (this.gone) return
    let id = ''
    let run: Run
    try {
      checkDecoded(msg)
      id = msg.id || newRequestId()
      if (this.principal !== undefined) this.admit(this.principal, msg.ensemble)
      const ens = this.gateway.ensemble(msg.ensemble)
      const request = { id, ensemble: ens.name, inputs: readInputs(ens, msg.inputs), budgetMs: msg.budget_ms, transportBudgetMs: deadlineBudget(this.call) }
      run = withIncomingMetadata(this.call.metadata, () => this.gateway.start(request))
    } catch (err) {
      this.reply({ id, error: errorInfo(err) })
      return
    }
    this.runs.add(run)
    run.result.then(
      (settled) => {
        const result = forCaller(settled, this.principal)
        this.settled(run, result.error ? { id, error: resultErrorInfo(result) } : { id, result })
      },
      (err: unknown) => this.settled(run, { id, error: errorInfo(err) }),
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

  private settled(run: Run, reply: StreamReply): void {
    this.runs.delete(run)
    this.reply(reply)
    this.endIfDone()
  }

  private reply(reply: StreamReply): void {
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

function errorInfo(err: unknown): StreamErrorInfo {
  const mapped = mapError(err)
  return { code: mapped.code, message: mapped.message, status: mapped.grpc, resultJson: '' }
}

function resultErrorInfo(result: PredictResult): StreamErrorInfo {
  const mapped = mapResultError(result)
  return { code: mapped.code, message: mapped.message, status: mapped.grpc, resultJson: JSON.stringify(failureBody(result)) }
}
