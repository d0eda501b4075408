// The one JSON reader of every JSON request (native and V2 REST bodies, stream-mode messages):
// UTF-8, not empty, JSON, and no key that could reach a prototype, each refusal BAD_REQUEST
// saying what is wrong in the caller's words (a forbidden key is named: the body is JSON).
import { describe, expect, it } from 'vitest'
import { parseJsonBytes, type JsonWords } from '../../src/api/json-bytes.ts'

const words: JsonWords = { subject: 'body', notJson: 'body is not valid JSON', empty: 'body is empty: its content-type says JSON' }
const parse = (text: string): unknown => parseJsonBytes(Buffer.from(text), words)

const refusal = (text: string | Buffer, as: JsonWords = words): string => {
  try {
    parseJsonBytes(Buffer.isBuffer(text) ? text : Buffer.from(text), as)
  } catch (err) {
    expect(err).toMatchObject({ code: 'BAD_REQUEST' })
    return (err as Error).message
  }
  throw new Error('parsed')
}

describe('parseJsonBytes', () => {
  it('refuses a __proto__ key anywhere, however the text spells it, naming it', () => {
    for (const text of ['{"__proto__":{"x":1}}', '{"inputs":{"a":[{"__proto__":1}]}}', '{"\\u005f_proto__":{}}', '{"__pr\\u006fto__" : 1}']) {
      expect(refusal(text), text).toBe('body holds the key "__proto__", refused: it could reach an object\'s prototype')
    }
  })

  it('refuses a constructor key holding prototype, naming it; a constructor key without one is data', () => {
    expect(refusal('{"inputs":{"constructor":{"prototype":{"a":1}}}}')).toBe('body holds a key "constructor" holding "prototype", refused: it could reach an object\'s prototype')
    expect(refusal('{"\\u0063onstructor":{"prototype":1}}')).toBe('body holds a key "constructor" holding "prototype", refused: it could reach an object\'s prototype')
    expect(parse('{"inputs":{"constructor":[1,2]},"constructor":{"x":1}}')).toEqual({ inputs: { constructor: [1, 2] }, constructor: { x: 1 } })
    // The words as values, not keys, are nothing.
    expect(parse('{"id":"__proto__","x":["constructor","prototype"]}')).toEqual({ id: '__proto__', x: ['constructor', 'prototype'] })
  })

  it('refuses bytes that are not UTF-8, an empty body and text that is not JSON, saying which', () => {
    expect(refusal(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]))).toBe('body is not valid JSON: its bytes are not UTF-8')
    expect(refusal('')).toBe('body is empty: its content-type says JSON')
    expect(refusal('\ufeff')).toBe('body is empty: its content-type says JSON')
    expect(refusal('{"inputs":')).toMatch(/^body is not valid JSON: /)
  })

  it('says each refusal in the caller\'s words', () => {
    const message: JsonWords = { subject: 'message value', notJson: 'message value is not JSON', empty: 'message value is empty' }
    expect(refusal('{"__proto__":1}', message)).toBe('message value holds the key "__proto__", refused: it could reach an object\'s prototype')
    expect(refusal('nope', message)).toMatch(/^message value is not JSON: /)
    expect(refusal('', message)).toBe('message value is empty')
  })

  it('skips a byte order mark', () => {
    expect(parse('\ufeff{"a":1}')).toEqual({ a: 1 })
    expect(parse('[1]')).toEqual([1])
  })
})
