// YAML parsing that remembers where every value came from, so each config error can
// say "file:line:col path: message".
import { relative } from 'node:path'
import { isMap, LineCounter, parseDocument, type Document } from 'yaml'
import type { TSchema } from 'typebox'
import Value from 'typebox/value'

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
}

export function parseYaml(text: string): { value: unknown; source: SourceMap; issues: ConfigIssue[] } {
  const lineCounter = new LineCounter()
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const issues: ConfigIssue[] = doc.errors.map((e) => {
    const pos = lineCounter.linePos(e.pos[0])
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
  }
  return { value: issues.length ? undefined : doc.toJS(), source, issues }
}

/** Validates `value` against a TypeBox schema; issues carry the full path from `prefix`. */
export function schemaIssues(schema: TSchema, value: unknown, prefix: readonly (string | number)[], source: SourceMap): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
  for (const error of Value.Errors(schema, value)) {
    const rel = error.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    let message = error.message
    const path = [...prefix, ...rel]
    if (error.keyword === 'additionalProperties') continue // reported per key as 'boolean' below
    if (error.keyword === 'boolean') message = 'unknown key'
    if (error.keyword === 'required') {
      const missing = (error.params as { requiredProperties?: string[] }).requiredProperties ?? []
      message = `missing required key${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`
    }
    if (error.keyword === 'anyOf' || error.keyword === 'oneOf') message = 'is not any of the allowed forms'
    const key = `${path.join('.')}|${message}`
    if (seen.has(key)) continue
    seen.add(key)
    // A union reports every branch; keep the first, most specific, message per path.
    if (rel.length && issues.some((i) => i.path === path.join('.'))) continue
    const pos = source.locate(path)
    issues.push({ path: path.join('.'), ...(pos ?? {}), message })
  }
  return issues
}
