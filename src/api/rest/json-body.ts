// The JSON body of the routes fastify parses for us (the native predict, the admin routes):
// UTF-8 (RFC 8259), so bytes that are not are refused, not read with U+FFFD in their place;
// and no key that could reach an object's prototype once the body is merged or copied
// (`__proto__`, a `constructor` holding `prototype`), as fastify's own parser refuses them
// (secure-json-parse), but saying which key rather than "Body is not valid JSON". The cost
// is that parser's: one JSON.parse, and the walk only for a body whose text spells one of
// those keys. (The V2 routes read their bodies themselves: src/api/json-bytes.ts.)
import { isUtf8 } from 'node:buffer'
import { GatewayError } from '../../errors.ts'

/** The keys as JSON text may spell them (a letter may be a \u escape), as secure-json-parse looks for them. */
const SUSPECT_PROTO = /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/
const SUSPECT_CONSTRUCTOR = /"(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072)"\s*:/

const hasOwn = (value: object, key: string): boolean => Object.prototype.hasOwnProperty.call(value, key)

/** The value a JSON body holds; BAD_REQUEST when its bytes are not UTF-8, it is empty or not JSON, or it holds a forbidden key. */
export function parseJsonBody(bytes: Buffer): unknown {
  if (!isUtf8(bytes)) throw new GatewayError('BAD_REQUEST', 'body is not valid JSON: its bytes are not UTF-8')
  let text = bytes.toString('utf8')
  // A byte order mark is allowed before JSON text (RFC 8259 §8.1), and fastify's parser skipped it.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  if (text === '') throw new GatewayError('BAD_REQUEST', 'body is empty: its content-type says JSON')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new GatewayError('BAD_REQUEST', `body is not valid JSON: ${(err as Error).message}`)
  }
  if (value !== null && typeof value === 'object' && (SUSPECT_PROTO.test(text) || SUSPECT_CONSTRUCTOR.test(text))) {
    const key = forbiddenKey(value)
    if (key !== undefined) throw new GatewayError('BAD_REQUEST', `body holds ${key}, refused: it could reach an object's prototype`)
  }
  return value
}

/** The first key, in any object of the value, that could reach a prototype: said as the refusal names it. */
function forbiddenKey(value: object): string | undefined {
  // Breadth first, without recursion: a body may nest as deep as JSON.parse goes.
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
