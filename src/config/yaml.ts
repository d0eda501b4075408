// YAML parsing that remembers where every value came from, so each config error can
// say "file:line:col path: message".
import { relative } from 'node:path'
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document } from 'yaml'
import type { TSchema } from 'typebox'
import Value from 'typebox/value'
import { formsMessage, MAX_TIMER_MS, schemaAt, TIMER_CAP_MESSAGE } from './forms.ts'
import { MAX_ALIAS_EXPANSIONS } from './listener.ts'

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

/** A config file's path as messages show it: relative to the working directory when it can be. */
export const shownPath = (file: string): string => relative(process.cwd(), file) || file

export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line ? `${file}:${issue.line}:${issue.col ?? 1}` : file
  return `${where} ${issue.path || '(root)'}: ${issue.message}`
}

export interface SourceMap {
  /** Locates a path (array of keys) in the source; falls back to the nearest existing parent. */
  locate(path: readonly (string | number)[]): { line: number; col: number } | undefined
  /** The source text of the scalar at `path` (`1.10` as written, not the number 1.1); undefined if none. */
  text(path: readonly (string | number)[]): string | undefined
}

export function parseYaml(text: string): { value: unknown; source: SourceMap; issues: ConfigIssue[] } {
  const lineCounter = new LineCounter()
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const issues: ConfigIssue[] = doc.errors.map((e) => {
    const pos = lineCounter.linePos(e.pos[0])
    const duplicate = e.code === 'DUPLICATE_KEY' ? keyPathAt(doc, e.pos[0]) : undefined
    if (duplicate) return { path: duplicate.join('.'), line: pos.line, col: pos.col, message: `duplicate key "${duplicate.at(-1)}": give each key once` }
    return { path: '', line: pos.line, col: pos.col, message: e.message.split('\n')[0] ?? e.message }
  })
  const source: SourceMap = {
    locate(path) {
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined
        if (node?.range) return lineCounter.linePos(node.range[0])
        if (n === 0 && isMap(doc.contents) && doc.contents.range) return lineCounter.linePos(doc.contents.range[0])
      }
      return undefined
    },
    text(path) {
      const node = doc.getIn(path, true)
      return isScalar(node) && node.range ? text.slice(node.range[0], node.range[1]) : undefined
    },
  }
  if (issues.length) return { value: undefined, source, issues }
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS }), source, issues }
  } catch (err) {
    // The library's errors here (an alias bomb) carry no position: point at the first alias.
    const pos = firstAliasAt(doc, lineCounter)
    const bomb = /alias count/i.test((err as Error).message)
    const message = bomb ? `aliases expand to too much (over ${MAX_ALIAS_EXPANSIONS} expansions): is this an alias bomb?` : (err as Error).message
    return { value: undefined, source, issues: [{ path: '', ...pos, message }] }
  }
}

/** The path of the map key that starts at `offset` (where the parser reports a duplicate key). */
function keyPathAt(doc: Document, offset: number): string[] | undefined {
  let found: string[] | undefined
  visit(doc, {
    Pair(_key, pair, ancestors) {
      if (!isScalar(pair.key) || pair.key.range?.[0] !== offset) return undefined
      const chain = [...ancestors, pair]
      found = []
      chain.forEach((node, i) => {
        if (isPair(node) && isScalar(node.key)) found!.push(String(node.key.value))
        else if (isSeq(node)) found!.push(String(node.items.indexOf(chain[i + 1] as never)))
      })
      return visit.BREAK
    },
  })
  return found
}

export { MAX_ALIAS_EXPANSIONS } from './listener.ts'

function firstAliasAt(doc: Document, lineCounter: LineCounter): { line: number; col: number } | undefined {
  let start: number | undefined
  visit(doc, {
    Node(_key, node) {
      if (!isAlias(node) || !node.range) return undefined
      start = node.range[0]
      return visit.BREAK
    },
  })
  return start === undefined ? undefined : lineCounter.linePos(start)
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
  const hasDeeper = (path: string): boolean => errors.some((e) => e.instancePath.startsWith(`${path}/`))
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
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
    const key = `${path.join('.')}|${message}`
    if (seen.has(key)) continue
    seen.add(key)
    // Keep the first, most specific, message per path.
    if (rel.length && issues.some((i) => i.path === path.join('.'))) continue
    const pos = source.locate(path)
    issues.push({ path: path.join('.'), ...(pos ?? {}), message })
  }
  return issues
}
