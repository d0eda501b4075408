// The native routes' JSON body: UTF-8, JSON, and no key that could reach a prototype, each
// refusal BAD_REQUEST saying what is wrong (fastify's parser said "Body is not valid JSON"
// for a forbidden key, though the body is JSON).
import { describe, expect, it } from 'vitest'
import { parseJsonBody } from '../../../src/api/rest/json-body.ts'

const refusal = (text: string | Buffer): string => {
  try {
    parseJsonBody(Buffer.isBuffer(text) ? text : Buffer.from(text))
  } catch (err) {
    expect(err).toMatchObject({ code: 'BAD_REQUEST' })
    return (err as Error).message
  }
  throw new Error('parsed')
}

describe('parseJsonBody', () => {
  it('refuses a __proto__ key anywhere, however the text spells it, naming it', () => {
    for (const text of ['{"__proto__":{"x":1}}', '{"inputs":{"a":[{"__proto__":1}]}}', '{"\\u005f_proto__":{}}', '{"__pr\\u006fto__" : 1}']) {
      expect(refusal(text), text).toBe('body holds the key "__proto__", refused: it could reach an object\'s prototype')
    }
  })

  it('refuses a constructor key holding prototype, naming it; a constructor key without one is data', () => {
    expect(refusal('{"inputs":{"constructor":{"prototype":{"a":1}}}}')).toBe('body holds a key "constructor" holding "prototype", refused: it could reach an object\'s prototype')
    expect(parseJsonBody(Buffer.from('{"inputs":{"constructor":[1,2]},"constructor":{"x":1}}'))).toEqual({ inputs: { constructor: [1, 2] }, constructor: { x: 1 } })
    // The words as values, not keys, are nothing.
    expect(parseJsonBody(Buffer.from('{"id":"__proto__","x":["constructor","prototype"]}'))).toEqual({ id: '__proto__', x: ['constructor', 'prototype'] })
  })

  it('refuses bytes that are not UTF-8, an empty body and text that is not JSON, saying which', () => {
    expect(refusal(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]))).toBe('body is not valid JSON: its bytes are not UTF-8')
    expect(refusal('')).toBe('body is empty: its content-type says JSON')
    expect(refusal('{"inputs":')).toMatch(/^body is not valid JSON: /)
  })

  it('skips a byte order mark, as fastify\'s parser did', () => {
    expect(parseJsonBody(Buffer.from('\ufeff{"a":1}'))).toEqual({ a: 1 })
    expect(parseJsonBody(Buffer.from('[1]'))).toEqual([1])
  })
})
