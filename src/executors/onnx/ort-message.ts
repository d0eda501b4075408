// onnxruntime's error messages as specserve passes them on (a load's failure, a run's
// MODEL_FAILED annotation): its own words, without the C++ source location and function
// signature its status messages start with (`/onnxruntime_src/onnxruntime/core/graph/
// model.cc:202 onnxruntime::Model::Model(onnx::ModelProto&&, …) Unsupported model IR version:
// 99, …`), nor the newline it ends some with. Only failures pass here: no run pays for it.

/** A source file and line as onnxruntime's errors give them (Linux or Windows build paths), and the space after. */
const SOURCE_LOCATION = /(?:\/|[A-Za-z]:\\)[^\s:]*\.(?:cc|cpp|cxx|c|h|hpp|cu|cuh):\d+ /g

/**
 * What may stand between the location and a signature's parameters: return type, qualified
 * name (onnxruntime's are all in a namespace: `::`), template arguments.
 */
const DECLARATOR = /^[\w:<>,*&~\s]+::[\w:<>,*&~\s]+$/
/** GCC's name for an anonymous namespace, inside a qualified name. */
const ANONYMOUS = '(anonymous namespace)'

/** What may follow a signature's parameters before the message. */
const QUALIFIERS = /^(?: const| volatile| noexcept| override|&&?)*/

/** `message` (an Error's, or anything thrown) without onnxruntime's source locations and signatures, trimmed. */
export function ortMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  let out = ''
  let from = 0
  for (const m of message.matchAll(SOURCE_LOCATION)) {
    if (m.index < from) continue
    out += message.slice(from, m.index)
    // "failed:/onnxruntime_src/…" reads "failed: <message>" once the location is gone.
    if (out.endsWith(':')) out += ' '
    from = afterSignature(message, m.index + m[0].length)
  }
  out += message.slice(from)
  // "Load model from … failed:Protobuf parsing failed." likewise.
  return out.replace(/^(Load model from .*? failed:)(?=\S)/, '$1 ').trim()
}

/** Where the message goes on after the function signature starting at `start`; `start` when none is there. */
function afterSignature(message: string, start: number): number {
  let open = message.indexOf('(', start)
  while (open >= 0 && message.startsWith(ANONYMOUS, open)) open = message.indexOf('(', open + ANONYMOUS.length)
  if (open < 0 || !DECLARATOR.test(message.slice(start, open).replaceAll(ANONYMOUS, ''))) return start
  let depth = 0
  for (let i = open; i < message.length; i++) {
    const c = message[i]
    if (c === '(') depth++
    else if (c === ')' && --depth === 0) {
      const end = i + 1 + QUALIFIERS.exec(message.slice(i + 1))![0].length
      return message[end] === ' ' ? end + 1 : start
    }
  }
  return start
}
