// One count helper for messages (eval's and validate's): the number and the word, plural but for one.
import { describe, expect, it } from 'vitest'
import { count } from '../src/plural.ts'

describe('count', () => {
  it('is singular for one, plural otherwise (zero too); an irregular plural as given', () => {
    expect([count(1, 'row'), count(0, 'row'), count(2, 'model'), count(1, 'child', 'children'), count(3, 'child', 'children')]).toEqual(['1 row', '0 rows', '2 models', '1 child', '3 children'])
  })
})
