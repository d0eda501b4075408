// Plain words for what a schema allows, for keys that take more than one form
// (`onnx_workers: auto | 1..256`): the validator's own message would name just one branch
// ("must be string") and mislead.

import { MAX_TIMER_MS } from '../timer-step.ts'

export { MAX_TIMER_MS }

type Schema = Readonly<Record<string, unknown>>

/** The validator's message for an over-the-maximum duration, said in words. */
export const TIMER_CAP_MESSAGE = `must be at most ${MAX_TIMER_MS} ms (about 24.8 days): Node.js fires a longer timer at once`

/** Node's HTTP server times an idle kept-alive socket out this much after keepAliveTimeout (keepAliveTimeoutBuffer). */
export const KEEP_ALIVE_BUFFER_MS = 1000
/** The longest keep_alive_timeout_ms whose socket timer, buffer added, Node.js can set. */
export const MAX_KEEP_ALIVE_MS = MAX_TIMER_MS - KEEP_ALIVE_BUFFER_MS
export const KEEP_ALIVE_CAP_MESSAGE = `must be at most ${MAX_KEEP_ALIVE_MS} ms: Node.js adds ${KEEP_ALIVE_BUFFER_MS} ms (keepAliveTimeoutBuffer) and fires a timer over ${MAX_TIMER_MS} ms at once`

/** The sub-schema a validator error's schemaPath (`#/properties/x/anyOf/1`) points at. */
export function schemaAt(root: unknown, schemaPath: string): Schema | undefined {
  let node: unknown = root
  for (const part of schemaPath.replace(/^#\/?/, '').split('/')) {
    if (part === '') continue
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~')
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node !== null && typeof node === 'object' ? (node as Schema) : undefined
}

function range(schema: Schema): string {
  const { minimum: min, maximum: max, exclusiveMinimum: xmin, exclusiveMaximum: xmax } = schema
  if (typeof min === 'number' && typeof max === 'number') return ` ${min} to ${max}`
  const bounds = [
    typeof min === 'number' ? `>= ${min}` : typeof xmin === 'number' ? `> ${xmin}` : undefined,
    typeof max === 'number' ? `<= ${max}` : typeof xmax === 'number' ? `< ${xmax}` : undefined,
  ].filter((b) => b !== undefined)
  return bounds.length ? ` ${bounds.join(' and ')}` : ''
}

/** One form in words: `"auto"`, `an integer 1 to 256`, `a map (policy, accuracy_target, explore)`. */
function describeForm(schema: Schema): string[] {
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Schema[]).flatMap(describeForm)
  if (Array.isArray(schema.oneOf)) return (schema.oneOf as Schema[]).flatMap(describeForm)
  if (Object.hasOwn(schema, 'const')) return [JSON.stringify(schema.const)]
  switch (schema.type) {
    case 'integer':
      return [`an integer${range(schema)}`]
    case 'number':
      return [`a number${range(schema)}`]
    case 'string':
      return [typeof schema.pattern === 'string' ? `a string matching ${schema.pattern}` : 'a string']
    case 'boolean':
      return ['true or false']
    case 'null':
      return ['null']
    case 'array':
      return ['a list']
    case 'object': {
      const keys = schema.properties && typeof schema.properties === 'object' ? Object.keys(schema.properties) : []
      return [keys.length ? `a map (${keys.join(', ')})` : 'a map']
    }
    default:
      return ['a value of another form']
  }
}

/** "must be one of: "auto", an integer 1 to 256" for a union schema. */
export function formsMessage(union: Schema | undefined): string {
  const forms = union ? [...new Set(describeForm(union))] : []
  if (forms.length === 0) return 'is not any of the allowed forms'
  return `must be one of: ${forms.join(', ')}`
}

/** fastify's maxParamLength, set on the REST server: REST routes take a model or ensemble name as one path segment. */
export const MAX_NAME_IN_PATH = 100

/** Why a model or ensemble name could not be called by its REST routes, or null. */
export function nameProblem(name: string): string | null {
  if (name === '') return 'a name cannot be empty'
  // A lone surrogate (YAML's "\ud800") has no UTF-8 form: no URL, header or record can carry it.
  if (!name.isWellFormed()) return `${JSON.stringify(name)} is not well-formed Unicode (a lone UTF-16 surrogate): a name must be text a URL can carry`
  const encoded = encodeURIComponent(name).length
  return encoded > MAX_NAME_IN_PATH ? `name too long: ${encoded} characters in a URL (percent-encoded), at most ${MAX_NAME_IN_PATH}, as REST routes take it as one path segment` : null
}
