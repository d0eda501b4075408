// JSON as some upstreams write it: TensorFlow Serving's REST API (and Python's json module)
// writes non-finite floats as the bare literals NaN, Infinity and -Infinity, which JSON.parse
// refuses. Only an answer JSON.parse refused comes here, so a conforming answer costs nothing.
// Each literal becomes a string marker starting with NUL, which the reviver turns back into
// the number (an answer's own string of exactly that text would be read as the number too).
// Integers beyond ±(2^53 - 1) are read exactly (exactInteger), here and by parseJson.

/**
 * An integer beyond ±(2^53 - 1) as a bigint, read from its own digits (JSON.parse's number has
 * lost them): TensorFlow Serving and MLServer write INT64 elements as bare numbers.
 */
function exactInteger(_key: string, value: unknown, context?: { source?: string }): unknown {
  return typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value) && context?.source !== undefined && /^-?\d+$/.test(context.source) ? BigInt(context.source) : value
}

/**
 * JSON.parse, with integers too large for a number read again exactly. Parsed plainly first:
 * a reviver costs ~10× the parse, and a scan of the text for long digit runs would find one in
 * nearly every float; walking the values for one past ±(2^53 - 1) costs a few percent of it.
 */
export function parseJson(text: string): unknown {
  const value: unknown = JSON.parse(text)
  return hasUnsafeNumber(value) ? JSON.parse(text, exactInteger as never) : value
}

const unsafe = (n: number): boolean => (n > Number.MAX_SAFE_INTEGER || n < Number.MIN_SAFE_INTEGER) && Number.isFinite(n)

/** Whether a finite number past ±(2^53 - 1) is anywhere in `value` (walked without recursion: answers may nest deep). */
function hasUnsafeNumber(value: unknown): boolean {
  if (typeof value === 'number') return unsafe(value)
  // Numbers are tested where they are met; only arrays and objects wait on the stack.
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (v === null || typeof v !== 'object') continue
    const items: unknown[] = Array.isArray(v) ? v : Object.values(v)
    for (let i = 0; i < items.length; i++) {
      const item = items[i]
      if (typeof item === 'number') {
        if (unsafe(item)) return true
      } else if (item !== null && typeof item === 'object') stack.push(item)
    }
  }
  return false
}

const NAN = '\u0000NaN'
const INF = '\u0000Infinity'
const NEG_INF = '\u0000-Infinity'

/** Parses `text`, which JSON.parse refused, reading bare NaN / Infinity / -Infinity (outside strings) as those numbers; throws otherwise. */
export function parseLenientJson(text: string): unknown {
  let out = ''
  let from = 0
  let replaced = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // Skip a string, escapes included: a literal inside one is text, not a number.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++
      continue
    }
    const token = text.startsWith('NaN', i) ? 'NaN' : text.startsWith('Infinity', i) ? 'Infinity' : text.startsWith('-Infinity', i) ? '-Infinity' : null
    if (token === null) continue
    // Written as a JSON escape (a raw NUL is not allowed in a JSON string); read back by the reviver.
    out += `${text.slice(from, i)}"\\u0000${token}"`
    i += token.length - 1
    from = i + 1
    replaced = true
  }
  // Its one caller has tried JSON.parse already: with no literal to read, it is not JSON.
  if (!replaced) throw new SyntaxError('not JSON, and no bare NaN or Infinity to read')
  return JSON.parse(out + text.slice(from), (key, value: unknown, context?: { source?: string }) =>
    value === NAN ? NaN : value === INF ? Infinity : value === NEG_INF ? -Infinity : exactInteger(key, value, context),
  )
}
