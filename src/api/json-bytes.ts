// JSON read from its bytes: the one reader of every JSON request, a native REST body, a V2 REST
// body (its JSON part), a stream-mode message (a native predict body), so a body gets the same
// answer whichever way it comes. Each caller names what it reads (JsonWords), so each refusal
// is said in that frontend's words, with its own code and shape around it.
// - JSON is UTF-8 (RFC 8259): bytes that are not are refused, not read with U+FFFD in their
//   place (altering any text they are in).
// - A byte order mark before the text is skipped (RFC 8259 §8.1 lets a parser ignore one).
// - An empty body is said to be empty (JSON.parse would say "Unexpected end of JSON input").
// - No key that could reach an object's prototype once the value is merged or copied
//   (`__proto__`, a `constructor` holding `prototype`), refused naming it. The check is
//   secure-json-parse's approach, which fastify's own parser runs (BSD-3-Clause: Sideway Inc,
//   the Fastify team and contributors): patterns for the keys as JSON text may spell them, and
//   a breadth-first walk of the value taken only when the text matches. Its two patterns are one
//   alternation here, so a value without those keys costs one scan of its text after JSON.parse.
import { isUtf8 } from 'node:buffer'
import { GatewayError } from '../errors.ts'

/** How a caller's refusals name what it reads. */
export interface JsonWords {
  /** What holds a forbidden key: `${subject} holds the key "__proto__", refused: …`. */
  readonly subject: string
  /** The start of a refusal of bytes that are not UTF-8, or not JSON: `${notJson}: ${reason}`. */
  readonly notJson: string
  /** The whole refusal of empty bytes (a byte order mark alone counts as empty). */
  readonly empty: string
}

/** `"__proto__":` or `"constructor":` as JSON text may spell them (any letter may be a \u escape): secure-json-parse's two patterns, as one alternation. */
const SUSPECT_KEY = /"(?:(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])|(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072))"\s*:/

const hasOwn = (value: object, key: string): boolean => Object.prototype.hasOwnProperty.call(value, key)

/** The JSON value `bytes` hold; BAD_REQUEST in `words` when they are not UTF-8, empty, not JSON, or hold a forbidden key. */
export function parseJsonBytes(bytes: Buffer, words: JsonWords): unknown {
  if (!isUtf8(bytes)) throw new GatewayError('BAD_REQUEST', `${words.notJson}: its bytes are not UTF-8`)
  let text = bytes.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  if (text === '') throw new GatewayError('BAD_REQUEST', words.empty)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new GatewayError('BAD_REQUEST', `${words.notJson}: ${(err as Error).message}`)
  }
  if (value !== null && typeof value === 'object' && SUSPECT_KEY.test(text)) {
    const key = forbiddenKey(value)
    if (key !== undefined) throw new GatewayError('BAD_REQUEST', `${words.subject} holds ${key}, refused: it could reach an object's prototype`)
  }
  return value
}

/** The first key, in any object of the value, that could reach a prototype: said as the refusal names it. */
function forbiddenKey(value: object): string | undefined {
  // Breadth first, without recursion: a value may nest as deep as JSON.parse goes.
  let level: object[] = [value]
  while (level.length > 0) {
    const next: object[] = []
    for (const node of level) {
      if (hasOwn(node, '__proto__')) return 'the key "__proto__"'
      const ctor = (node as { constructor?: unknown }).constructor
      if (hasOwn(node, 'constructor') && ctor !== null && typeof ctor === 'object' && hasOwn(ctor, 'prototype')) return 'a key "constructor" holding "prototype"'
      for (const key in node) {
        const child = (node as Record<string, unknown>)[key]
        if (child !== null && typeof child === 'object') next.push(child)
      }
    }
    level = next
  }
  return undefined
}
