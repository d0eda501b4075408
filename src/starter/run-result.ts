// What a run settles with: the decision a cancel stands for, and the result a decision
// makes for the request (the ensemble's outputs only, the decision as reported, the
// members' annotations, the error). The run decides when; this says what it reports.
import type { Decision, PredictRequest, PredictResult } from '../types.ts'
import { declaredOutputs, onlyOutputs, type EnsembleRuntime } from './ensemble.ts'
import { failError, type MemberTally } from './outcomes.ts'
import { roundMs } from './stats.ts'

/** Why a run was cancelled: its client went away, or the gateway is stopping (stream mode's grace ran out). */
export type CancelCause = 'client' | 'stopping'
export const CANCELLED: Readonly<Record<CancelCause, Decision>> = Object.freeze({
  client: Object.freeze({ kind: 'fail', code: 'DEADLINE_EXCEEDED', reason: 'client-cancelled', votes: null }),
  stopping: Object.freeze({ kind: 'fail', code: 'DEADLINE_EXCEEDED', reason: 'gateway-stopping', votes: null }),
})

/**
 * The result of `decision`, `elapsedMs` after the run started. `chosen`: the member whose
 * answer it is (null: none, or one the strategy put together); `members`: their annotations.
 */
export function runResult(
  ens: EnsembleRuntime,
  req: PredictRequest,
  decision: Decision,
  chosen: number | null,
  members: MemberTally,
  budgetMs: number,
  elapsedMs: number,
  cancelled: boolean,
): PredictResult {
  let outputs = decision.kind === 'answer' ? decision.outputs : null
  // Answers carry the ensemble's outputs only: a member's that has others (known at build),
  // or one the strategy put together (a batch spliced from several members' rows).
  if (outputs !== null) {
    if (chosen === null) outputs = declaredOutputs(outputs, ens)
    else if (!ens.answersAsDeclared[chosen]) outputs = onlyOutputs(outputs, ens.outputs)
  }
  return {
    id: req.id,
    ensemble: ens.name,
    strategy: ens.strategyName,
    outputs,
    decision: { chosen: chosen === null ? null : ens.models[chosen]!.name, reason: decision.reason, votes: decision.votes },
    budget_ms: budgetMs,
    elapsed_ms: roundMs(elapsedMs),
    models: members.models,
    error: decision.kind === 'fail' ? failError(decision, members.commonCause ?? null, cancelled) : null,
  }
}
