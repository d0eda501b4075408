// YAML parsing that remembers where every value came from, so each config error can
// say "file:line:col path: message".
import { relative, resolve } from 'node:path'
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml'
import type { TSchema } from 'typebox'
import Value from 'typebox/value'
import { isWithin } from '../durable.ts'
import { formsMessage, KEEP_ALIVE_CAP_MESSAGE, MAX_KEEP_ALIVE_MS, MAX_TIMER_MS, schemaAt, TIMER_CAP_MESSAGE } from './forms.ts'
import { formatIssue, keyString, readYaml } from './yaml-document.ts'

export { formatIssue } from './yaml-document.ts'

export interface ConfigIssue {
  /** Dotted YAML path, e.g. `ensembles.fraud.budget_ms.max`. */
  readonly path: string
  readonly line?: number
  readonly col?: number
  readonly message: string
}

export class ConfigError extends Error {
  readonly file: string
  readonly issues: readonly ConfigIssue[]
  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(`${file}: ${issues.length} error(s)\n${issues.map((i) => `  ${formatIssue(file, i)}`).join('\n')}`)
    this.name = 'ConfigError'
    this.file = file
    this.issues = issues
  }
}

/**
 * A config file's path as messages show it: relative to the working directory when it is below
 * it; else absolute (`../etc/specserve/specserve.yaml` from /app would send a reader looking).
 */
export const shownPath = (file: string): string => {
  const rel = relative(process.cwd(), file)
  return rel !== '' && isWithin(process.cwd(), file) ? rel : resolve(file)
}


export interface SourceMap {
  /**
   * Locates a path (array of keys) in the source; falls back to the nearest existing parent.
   * A map entry whose value is a list or a map (or nothing) is located at its key: a block
   * map's own text starts at its first child, a line below the key the message is about.
   * `key` locates the key whatever its value (an unknown key).
   */
  locate(path: readonly (string | number)[], at?: 'value' | 'key'): { line: number; col: number } | undefined
  /** The source text of the scalar at `path` (`1.10` as written, not the number 1.1); undefined if none. */
  text(path: readonly (string | number)[]): string | undefined
  /** An issue about `path` (keys, or dotted), at its line. */
  issue(path: readonly (string | number)[] | string, message: string): ConfigIssue
}

export function parseYaml(text: string): { value: unknown; source: SourceMap; issues: ConfigIssue[] } {
  const { doc, lineCounter, value, issues } = readYaml(text)
  return { value, source: sourceMap(doc, text, lineCounter), issues }
}

function sourceMap(doc: Document, text: string, lineCounter: LineCounter): SourceMap {
  const indexes = new WeakMap<YAMLMap, Map<string, Pair>>()
  const pairOf = (map: YAMLMap, key: string): Pair | undefined => {
    let index = indexes.get(map)
    if (!index) {
      index = new Map()
      for (const pair of map.items as Pair[]) {
        const name = keyString(pair.key)
        if (name !== undefined && !index.has(name)) index.set(name, pair)
      }
      indexes.set(map, index)
    }
    return index.get(key)
  }
  /** The deepest node along `path`, and where to point for it. */
  const find = (path: readonly (string | number)[], at: 'value' | 'key'): { node: unknown; offset: number | undefined } => {
    let node: unknown = doc.contents
    let offset = (doc.contents as Node | null)?.range?.[0]
    for (const [i, part] of path.entries()) {
      if (isMap(node)) {
        const pair = pairOf(node, String(part))
        if (!pair) return { node: undefined, offset }
        const value = pair.value as Node | null
        const atKey = (at === 'key' && i === path.length - 1) || isMap(value) || isSeq(value) || !value?.range
        offset = (atKey ? (pair.key as Node | null)?.range?.[0] : value.range?.[0]) ?? offset
        node = value
      } else if (isSeq(node)) {
        const item = node.items[Number(part)] as Node | undefined
        if (item === undefined) return { node: undefined, offset }
        offset = item?.range?.[0] ?? offset
        node = item
      } else return { node: undefined, offset }
    }
    return { node, offset }
  }
  return {
    locate(path, at = 'value') {
      const { offset } = find(path, at)
      return offset === undefined ? undefined : lineCounter.linePos(offset)
    },
    text(path) {
      const { node } = find(path, 'value')
      return isScalar(node) && node.range ? text.slice(node.range[0], node.range[1]) : undefined
    },
    issue(path, message) {
      const keys = typeof path === 'string' ? path.split('.') : path
      return { path: keys.join('.'), ...(this.locate(keys) ?? {}), message }
    },
  }
}

/** Validates `value` against a TypeBox schema; issues carry the full path from `prefix`. */
export function schemaIssues(schema: TSchema, value: unknown, prefix: readonly (string | number)[], source: SourceMap): ConfigIssue[] {
  const errors = [...Value.Errors(schema, value)]
  const isUnion = (e: (typeof errors)[number]): boolean => e.keyword === 'anyOf' || e.keyword === 'oneOf'
  // A key that takes several forms fails every branch. The outermost union error at a path
  // speaks for them all (listing the forms), unless something below the path failed: then
  // the value had the right form (a map) and the deeper errors say what is wrong in it.
  const unions = new Map<string, (typeof errors)[number]>()
  for (const e of errors) {
    if (!isUnion(e)) continue
    const outer = unions.get(e.instancePath)
    if (!outer || e.schemaPath.length < outer.schemaPath.length) unions.set(e.instancePath, e)
  }
  // Every path with an error below it, so each question is one lookup (a config can hold 100 000 entries).
  const parents = new Set<string>()
  for (const e of errors) {
    for (let path = e.instancePath; path !== ''; ) {
      const cut = path.lastIndexOf('/')
      path = cut > 0 ? path.slice(0, cut) : ''
      parents.add(path)
    }
  }
  const hasDeeper = (path: string): boolean => parents.has(path)
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
  const reported = new Set<string>()
  for (const error of errors) {
    const union = unions.get(error.instancePath)
    if (union && (error !== union || hasDeeper(error.instancePath))) continue
    const rel = error.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    let message = error.message
    const path = [...prefix, ...rel]
    if (error.keyword === 'additionalProperties') continue // reported per key as 'boolean' below
    if (error.keyword === 'boolean') message = 'unknown key'
    if (error.keyword === 'required') {
      const missing = (error.params as { requiredProperties?: string[] }).requiredProperties ?? []
      message = `missing required key${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`
    }
    if (isUnion(error)) message = formsMessage(schemaAt(schema, error.schemaPath))
    if (error.keyword === 'maximum' && (error.params as { limit?: number }).limit === MAX_TIMER_MS) message = TIMER_CAP_MESSAGE
    if (error.keyword === 'maximum' && (error.params as { limit?: number }).limit === MAX_KEEP_ALIVE_MS) message = KEEP_ALIVE_CAP_MESSAGE
    const key = `${path.join('.')}|${message}`
    if (seen.has(key)) continue
    seen.add(key)
    // Keep the first, most specific, message per path.
    if (rel.length && reported.has(path.join('.'))) continue
    reported.add(path.join('.'))
    const pos = source.locate(path, error.keyword === 'boolean' ? 'key' : 'value')
    issues.push({ path: path.join('.'), ...(pos ?? {}), message })
  }
  return issues
}
