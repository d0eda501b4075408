// The decimal grammar a header's budget, an eval CSV cell and an eval --budgets item share.
import { describe, expect, it } from 'vitest'
import { DECIMAL } from '../src/decimal.ts'

describe('DECIMAL', () => {
  it('takes decimal and exponent notation with a sign; not hex, Infinity, a bare exponent or blanks', () => {
    for (const text of ['12', '-0.5', '+.5', '5.', '2e1', '1E-3', '007']) expect(DECIMAL.test(text), text).toBe(true)
    for (const text of ['0x10', 'Infinity', 'NaN', '1e', 'e1', '.', '', ' 1', '1 ', '1_000', '1,5']) expect(DECIMAL.test(text), text).toBe(false)
  })
})
