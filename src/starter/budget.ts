import { GatewayError } from '../errors.ts'
import { describe } from '../tensor/index.ts'
import type { PredictRequest } from '../types.ts'

/**
 * Effective budget = min(explicit budget, transport deadline, ensemble max); neither given →
 * ensemble default. An explicit budget over the cap is the caller's mistake (400); a
 * transport deadline longer than the cap is normal and is clamped. A deadline cap (a
 * stream's deadline, shared by all its messages) only caps: min(explicit budget, else the
 * ensemble default, the cap). A stream open for minutes says nothing about how long one
 * message may take.
 */
export function effectiveBudget(req: PredictRequest, cap: { readonly default: number; readonly max: number }): number {
  let budget: number | undefined
  if (req.budgetMs !== undefined) {
    const b = req.budgetMs
    // As parseBudget says it (src/api/native/request.ts): NaN and infinities named as written, not as JSON's null.
    if (typeof b !== 'number') throw new GatewayError('BAD_BUDGET', `budget_ms must be a number, got ${describe(b)}`)
    if (!Number.isFinite(b)) throw new GatewayError('BAD_BUDGET', `budget_ms must be a finite number, got ${describe(b)}`)
    if (b <= 0) throw new GatewayError('BAD_BUDGET', `budget_ms must be a positive number of milliseconds, got ${describe(b)}`)
    if (b > cap.max) throw overCap('budget_ms', b, cap.max)
    budget = b
  }
  if (req.transportBudgetMs !== undefined) {
    if (req.transportBudgetMs <= 0) throw pastDeadline()
    budget = Math.min(budget ?? cap.max, req.transportBudgetMs)
  }
  if (req.deadlineCapMs !== undefined) {
    if (req.deadlineCapMs <= 0) throw pastDeadline()
    budget = Math.min(budget ?? cap.default, req.deadlineCapMs)
  }
  return budget ?? cap.default
}

/** A call whose deadline had passed when it arrived (a unary call's, a stream's): refused, nothing run. */
export const pastDeadline = (): GatewayError => new GatewayError('DEADLINE_EXCEEDED', 'the deadline had passed before the request arrived')

/** A budget given over the ensemble's `budget_ms.max` (`field`: where it was given): the caller's mistake. */
export const overCap = (field: string, ms: number, maxMs: number): GatewayError => new GatewayError('BAD_BUDGET', `${field} ${ms} is over this ensemble's cap of ${maxMs} ms`)
