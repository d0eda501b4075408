// The parsed YAML document checked and turned into plain values. The library's own checks
// are quadratic (its duplicate-key test compares each key with every earlier one, and each
// alias looks its anchor up through every anchor and alias before it: a 50 000-key map took
// a minute, 10 000 aliases two seconds), and it lets through what a config must not hold:
// keys that collide once made strings, merge keys, tags it does not know, list or map keys.
// These passes are linear, and each refusal carries a line.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Alias, type Document, type Node, type Pair } from 'yaml'
import type { ConfigIssue } from './yaml.ts'

/**
 * Most list items and map entries aliases may add to a config (each alias counts the entries
 * of the block it repeats, nested ones included): far more than sharing blocks between models
 * and ensembles adds, and about 1 s of validation at most. It stops an alias that repeats a big
 * block so often that validating it would hold the event loop, which a reload shares with
 * serving, for many seconds (a 100 KB file of aliases can expand to a million entries).
 */
export const MAX_EXPANDED_ENTRIES = 200_000

type Path = (string | number)[]

/** A map key as a JS object holds it: `1`, `1.0` and `"1"` are one key, as are `true` and `"true"`; null is "". */
export function keyString(key: unknown): string | undefined {
  if (!isScalar(key)) return undefined
  const { value } = key
  if (value === null) return ''
  return typeof value === 'object' ? undefined : String(value as string | number | boolean | bigint)
}

/**
 * Parses and checks `text`: its value and the issues that refuse it (syntax first, and then
 * no value; the rest only of a document that parsed). The health probe reads the config this way too (it imports
 * nothing else of the gateway's), so it reads no file the loader would not.
 */
/** An issue as every message shows it: `file:line:col path: message`. */
export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line ? `${file}:${issue.line}:${issue.col ?? 1}` : file
  return `${where} ${issue.path || '(root)'}: ${issue.message}`
}

export function readYaml(text: string): { doc: Document; lineCounter: LineCounter; value: unknown; issues: ConfigIssue[] } {
  const lineCounter = new LineCounter()
  // uniqueKeys off: checkDocument finds duplicate keys, as strings (what the config's values hold) and in linear time.
  // resolveKnownTags off: the YAML 1.1 tags the library knows (!!binary, !!timestamp, !!set,
  // !!omap, !!pairs, !!merge) are unknown tags here too, refused below.
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, resolveKnownTags: false })
  const syntax: ConfigIssue[] = doc.errors.map((e) => ({ path: '', ...lineCounter.linePos(e.pos[0]), message: syntaxMessage(e.code, e.message) }))
  if (syntax.length) return { doc, lineCounter, value: undefined, issues: syntax }
  const { issues, targets } = checkDocument(doc, text, lineCounter)
  // The value even with issues (the health probe reads `server` past a fault elsewhere): an alias
  // refused reads as null, and aliases share their anchor's value, so nothing here expands.
  return { doc, lineCounter, value: plainValue(doc.contents, targets), issues }
}

/** The parser's message, its first line; its stack overflow on lists or maps nested hundreds deep (RESOURCE_EXHAUSTION), said as what it means. */
function syntaxMessage(code: string, message: string): string {
  if (code === 'RESOURCE_EXHAUSTION') return 'lists or maps nested deeper than the YAML reader can follow (hundreds of levels): a config is a few levels deep'
  return message.split('\n')[0] ?? message
}

interface CheckedDocument {
  readonly issues: ConfigIssue[]
  /** Each alias's anchor (the last of its name before it, as YAML says); an alias named by no anchor is absent. */
  readonly targets: ReadonlyMap<Alias, Node>
}

function checkDocument(doc: Document, text: string, lines: LineCounter): CheckedDocument {
  const issues: ConfigIssue[] = []
  const at = (offset: number | undefined, path: Path, message: string): void => {
    issues.push({ path: path.join('.'), ...(offset === undefined ? {} : lines.linePos(offset)), message })
  }
  const version = doc.directives?.yaml
  if (version?.explicit && version.version !== '1.2') {
    const directive = /^%YAML\b/m.exec(text)
    at(directive?.index, [], `%YAML ${version.version}: configs are read as YAML 1.2 only (1.1 reads yes, no, on and off as booleans, 010 as octal, and has merge keys): remove the directive`)
  }
  const anchors = new Map<string, Node>()
  const targets = new Map<Alias, Node>()
  const open = new Set<Node>()
  const walk = (node: unknown, path: Path): void => {
    if (isAlias(node)) {
      const target = anchors.get(node.source)
      if (!target) at(node.range?.[0], path, `alias *${node.source} names no anchor (&${node.source}) before it`)
      else if (open.has(target)) at(node.range?.[0], path, `alias *${node.source} is inside its own anchor: it would repeat without end`)
      else targets.set(node, target)
      return
    }
    if (!isMap(node) && !isSeq(node) && !isScalar(node)) return
    // Set before the children are walked: an alias inside names this node (a cycle, refused above).
    if (node.anchor) anchors.set(node.anchor, node as Node)
    if (isScalar(node)) return
    open.add(node as Node)
    if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]))
    else checkMap(node.items as Pair[], path)
    open.delete(node as Node)
  }
  const checkMap = (pairs: Pair[], path: Path): void => {
    const seen = new Map<string, Node>()
    for (const pair of pairs) {
      const key = keyString(pair.key)
      const keyAt = (pair.key as Node | null)?.range?.[0]
      if (isScalar(pair.key) && pair.key.anchor) anchors.set(pair.key.anchor, pair.key)
      if (key === undefined) {
        at(keyAt, path, 'a key must be a name or a number written out, not a list, a map or an alias')
        walk(pair.value, path)
        continue
      }
      const keyPath = [...path, key]
      if (key === '<<' && (pair.key as { type?: string }).type === 'PLAIN') {
        at(keyAt, keyPath, 'merge keys (<<) are not part of YAML 1.2 and are not supported: write the keys out in this map (an alias can still stand for a whole value: key: *anchor)')
      }
      const first = seen.get(key)
      if (first) {
        const [a, b] = [sourceOf(first, text), sourceOf(pair.key as Node, text)]
        const same = a === b ? '' : ` (${a} and ${b} are one key once read)`
        at(keyAt, keyPath, `duplicate key ${JSON.stringify(key)}${same}: give each key once`)
      } else seen.set(key, pair.key as Node)
      walk(pair.value, keyPath)
    }
  }
  walk(doc.contents, [])
  for (const warning of doc.warnings) {
    // Only what changes a value's meaning refuses the file; the library's other warnings are of
    // layout it reads as written (a flow list closed at its parent's indentation: BAD_INDENT).
    if (!MEANING_WARNINGS.has(warning.code)) continue
    const first = warning.message.split('\n')[0] ?? warning.message
    const tag = warning.code === 'TAG_RESOLVE_FAILED' ? /: (.*)$/.exec(first)?.[1] : undefined
    const shown = tag?.replace(/^tag:yaml\.org,2002:/, '!!')
    // A core tag the value does not fit (`!!float 1`, `!!bool yes`) fails as an unknown one does.
    const message =
      shown === undefined ? first
      : /^!!(str|int|float|bool|null|seq|map)$/.test(shown) ? `the value does not fit its tag ${shown} (it would be read as a string): write a ${shown} value, or remove the tag`
      : `unknown tag ${shown}: a config holds plain YAML 1.2 values (strings, numbers, true/false, null, lists, maps); remove the tag`
    at(warning.pos[0], pathAt(doc.contents, warning.pos[0], []), message)
  }
  if (issues.length === 0) tooBig(doc, targets, at)
  return { issues, targets }
}

/** The library's warnings that say a value is not read as written: a tag it cannot apply, a directive it does not know. */
const MEANING_WARNINGS: ReadonlySet<string> = new Set(['TAG_RESOLVE_FAILED', 'BAD_COLLECTION_TYPE', 'BAD_DIRECTIVE'])

const sourceOf = (node: Node, text: string): string => (node.range ? text.slice(node.range[0], node.range[1]) : String((node as { value?: unknown }).value))

/**
 * Counts what aliases add, in document order, and refuses the config at the alias that takes
 * the count past MAX_EXPANDED_ENTRIES. What is written out is bounded by the file's size; an
 * alias is what makes a small file large. Each block's size is counted once, so this is linear
 * in the file however far it expands.
 */
function tooBig(doc: Document, targets: ReadonlyMap<Alias, Node>, at: (offset: number | undefined, path: Path, message: string) => void): void {
  const sizes = new Map<unknown, number>()
  const sizeOf = (node: unknown): number => {
    if (isAlias(node)) return sizeOf(targets.get(node))
    if (!isMap(node) && !isSeq(node)) return 0
    let size = sizes.get(node)
    if (size !== undefined) return size
    size = 0
    for (const item of node.items as unknown[]) size += 1 + (isSeq(node) ? sizeOf(item) : sizeOf((item as Pair).value))
    // Capped: nested aliases can multiply past what a double holds exactly.
    sizes.set(node, (size = Math.min(size, Number.MAX_SAFE_INTEGER)))
    return size
  }
  let total = 0
  const grow = (node: unknown, path: Path): boolean => {
    if (isAlias(node)) {
      total += sizeOf(node)
      if (total <= MAX_EXPANDED_ENTRIES) return false
      at(node.range?.[0], path, `aliases expand this config past ${MAX_EXPANDED_ENTRIES} list items and map entries (here, *${node.source}): is this an alias bomb? Repeat fewer large blocks`)
      return true
    }
    if (!isMap(node) && !isSeq(node)) return false
    for (const [i, item] of (node.items as unknown[]).entries()) {
      const [child, key] = isSeq(node) ? [item, i] : [(item as Pair).value, keyString((item as Pair).key) ?? '?']
      if (grow(child, [...path, key])) return true
    }
    return false
  }
  grow(doc.contents, [])
}

/** The path of the innermost entry whose text holds `offset` (where the library reports a warning). */
function pathAt(node: unknown, offset: number, path: Path): Path {
  if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const range = (item as Node | null)?.range
      if (range && range[0] <= offset && offset < range[2]) return pathAt(item, offset, [...path, i])
    }
  } else if (isMap(node)) {
    for (const pair of node.items as Pair[]) {
      const start = (pair.key as Node | null)?.range?.[0]
      const end = (pair.value as Node | null)?.range?.[2] ?? (pair.key as Node | null)?.range?.[2]
      if (start !== undefined && end !== undefined && start <= offset && offset < end) return pathAt(pair.value, offset, [...path, keyString(pair.key) ?? '?'])
    }
  }
  return path
}

/**
 * The document's plain value, as the library's toJS makes it (an alias shares its anchor's
 * value), with each alias's anchor known beforehand: linear, where the library's is not.
 * Keys are own properties even when named like Object.prototype's (`toString`, `__proto__`).
 */
export function plainValue(node: unknown, targets: ReadonlyMap<Alias, Node>, made = new Map<unknown, unknown>()): unknown {
  if (isAlias(node)) return plainValue(targets.get(node), targets, made)
  if (isScalar(node)) return node.value
  if (!isMap(node) && !isSeq(node)) return null
  const done = made.get(node)
  if (done !== undefined) return done
  if (isSeq(node)) {
    const list: unknown[] = []
    made.set(node, list)
    for (const item of node.items) list.push(plainValue(item, targets, made))
    return list
  }
  const map: Record<string, unknown> = {}
  made.set(node, map)
  for (const pair of node.items as Pair[]) {
    Object.defineProperty(map, keyString(pair.key) ?? '', { value: plainValue(pair.value, targets, made), writable: true, enumerable: true, configurable: true })
  }
  return map
}
