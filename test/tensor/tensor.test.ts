// How messages quote what a client sent (describe, quote): JSON text, cut short, and no
// control character raw, C1 and DEL included (JSON.stringify escapes only U+0000–U+001F),
// so an error message cannot carry one into a log line or a terminal.
import { describe as suite, expect, it } from 'vitest'
import { checkRequestId } from '../../src/api/native/request.ts'
import { describe, quote } from '../../src/tensor/index.ts'

suite('describe and quote', () => {
  it('escape DEL and the C1 controls, as JSON escapes the C0 ones; other characters stay', () => {
    expect(describe('a\u007fb\u0085c\u009fd\u00a0é\n')).toBe('"a\\u007fb\\u0085c\\u009fd\u00a0é\\n"')
    expect(describe(['\u009b31m'])).toBe('["\\u009b31m"]')
    expect(quote('x\u0080y\u007f')).toBe('"x\\u0080y\\u007f"')
    expect(describe(12.5)).toBe('12.5')
  })

  it('so a refused request id is echoed without them', () => {
    expect(() => checkRequestId('a\u0085b', 'id')).toThrow('id must not contain control characters, got "a\\u0085b"')
  })
})
