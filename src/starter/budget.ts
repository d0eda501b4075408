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
  // Every frontend checks it as it reads the request (readBudget); checked again for a library caller of gateway.start.
  let budget = req.budgetMs === undefined ? undefined : checkBudget(req.budgetMs, 'budget_ms', cap.max)
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

/**
 * An explicit budget (`field`: where it was given, `budget_ms` or the V2 `parameter budget_ms`)
 * as milliseconds within `maxMs`, the ensemble's cap; BAD_BUDGET naming it otherwise. NaN and
 * the infinities are named as written (JSON's 1e400 parses as Infinity; gRPC's budget_ms is a
 * double), not as the null JSON would print for them.
 */
export function checkBudget(value: unknown, field: string, maxMs: number): number {
  if (typeof value !== 'number') throw new GatewayError('BAD_BUDGET', `${field} must be a number, got ${describe(value)}`)
  if (!Number.isFinite(value)) throw new GatewayError('BAD_BUDGET', `${field} must be a finite number, got ${value}`)
  if (value <= 0) throw new GatewayError('BAD_BUDGET', `${field} must be a positive number of milliseconds, got ${value}`)
  if (value > maxMs) throw overCap(field, value, maxMs)
  return value
}

/** A call whose deadline had passed when it arrived (a unary call's, a stream's): refused, nothing run. */
export const pastDeadline = (): GatewayError => new GatewayError('DEADLINE_EXCEEDED', 'the deadline had passed before the request arrived')

/** A budget given over the ensemble's `budget_ms.max` (`field`: where it was given): the caller's mistake. */
export const overCap = (field: string, ms: number, maxMs: number): GatewayError => new GatewayError('BAD_BUDGET', `${field} ${ms} is over this ensemble's cap of ${maxMs} ms`)
