import { describe, expect, it } from 'vitest'
import { effectiveBudget } from '../../src/starter/budget.ts'

const cap = { default: 50, max: 200 }
const req = (extra: { budgetMs?: number; transportBudgetMs?: number; deadlineCapMs?: number }) => ({ id: 'x', ensemble: 'e', inputs: {}, ...extra })

describe('effective budget', () => {
  it('is the ensemble default when the request names none', () => {
    expect(effectiveBudget(req({}), cap)).toBe(50)
  })
  it('is the requested budget within the cap', () => {
    expect(effectiveBudget(req({ budgetMs: 120 }), cap)).toBe(120)
  })
  it('rejects a requested budget over the cap, zero, negative or not a number', () => {
    for (const budgetMs of [201, 0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => effectiveBudget(req({ budgetMs }), cap)).toThrow(expect.objectContaining({ code: 'BAD_BUDGET' }))
    }
  })
  it('names a non-finite budget as written, finite being what it must be (gRPC budget_ms is a double: NaN and infinities arrive)', () => {
    expect(() => effectiveBudget(req({ budgetMs: Number.NaN }), cap)).toThrow('budget_ms must be a finite number, got NaN')
    expect(() => effectiveBudget(req({ budgetMs: Number.NEGATIVE_INFINITY }), cap)).toThrow('budget_ms must be a finite number, got -Infinity')
    expect(() => effectiveBudget(req({ budgetMs: -5 }), cap)).toThrow('budget_ms must be a positive number of milliseconds, got -5')
  })
  it('clamps a transport deadline to the cap and takes the min with an explicit budget', () => {
    expect(effectiveBudget(req({ transportBudgetMs: 10_000 }), cap)).toBe(200)
    expect(effectiveBudget(req({ transportBudgetMs: 30 }), cap)).toBe(30)
    expect(effectiveBudget(req({ transportBudgetMs: 30, budgetMs: 20 }), cap)).toBe(20)
    expect(effectiveBudget(req({ transportBudgetMs: 300, budgetMs: 100 }), cap)).toBe(100)
  })
  it('fails at once when the transport deadline has already passed', () => {
    expect(() => effectiveBudget(req({ transportBudgetMs: 0 }), cap)).toThrow(expect.objectContaining({ code: 'DEADLINE_EXCEEDED' }))
    expect(() => effectiveBudget(req({ deadlineCapMs: 0 }), cap)).toThrow(expect.objectContaining({ code: 'DEADLINE_EXCEEDED' }))
  })
  it("keeps the request's own budget, else the default, under a stream's deadline cap", () => {
    expect(effectiveBudget(req({ deadlineCapMs: 60_000 }), cap)).toBe(50)
    expect(effectiveBudget(req({ deadlineCapMs: 60_000, budgetMs: 120 }), cap)).toBe(120)
    expect(effectiveBudget(req({ deadlineCapMs: 30 }), cap)).toBe(30)
    expect(effectiveBudget(req({ deadlineCapMs: 30, budgetMs: 120 }), cap)).toBe(30)
    expect(() => effectiveBudget(req({ deadlineCapMs: 60_000, budgetMs: 201 }), cap)).toThrow(expect.objectContaining({ code: 'BAD_BUDGET' }))
  })
})
