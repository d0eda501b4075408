// Every key the config accepts is named in the docs: a key the loader takes but no page
// mentions (output.kafka.client_id was one) is a setting operators cannot find.
// "Named" means one of two things, each looked for where it can only be a config key's name:
// - inside an inline code span of the prose (`rest_port`, `auth.jwt.jwks_url`, `{ rps, burst }`);
//   spans are taken whole first, so a key in plain prose between two spans does not count;
// - as a YAML key (`key:` at a line start or after space, `{`, `,` or `#`) in a fenced block
//   (the examples); plain prose reading `key: ...` does not count.
// What it cannot catch: a key is matched by its last name only, so a name two sections share
// (`path`: repository, onnx and seldon models) passes if any one is documented, and so does a
// name the docs use for something else (`client_id`, the Kafka setting, is also a JWT claim);
// nor whether the page naming a key documents it. Spans are paired as CommonMark pairs single
// backticks on one line; a double-backtick span or an escaped backtick can pair them wrongly.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import '../../src/collectors/index.ts'
import '../../src/executors/index.ts'
import { getStrategy, strategyNames } from '../../src/collectors/registry.ts'
import { RootSchema } from '../../src/config/schema.ts'
import { getExecutorKind, executorKinds } from '../../src/executors/registry.ts'
import { KafkaSchema } from '../../src/kafka/config.ts'
import { root } from '../helpers.ts'

interface SchemaNode {
  readonly properties?: Record<string, SchemaNode>
  readonly patternProperties?: Record<string, SchemaNode>
  readonly additionalProperties?: SchemaNode | boolean
  readonly items?: SchemaNode
  readonly anyOf?: readonly SchemaNode[]
  readonly oneOf?: readonly SchemaNode[]
  readonly allOf?: readonly SchemaNode[]
}

/** Every key under `schema`, as `path.key` → key. */
function keysOf(schema: SchemaNode, path: string, out: Map<string, string>): Map<string, string> {
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    out.set(`${path}.${key}`, key)
    keysOf(sub, `${path}.${key}`, out)
  }
  for (const sub of [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])]) keysOf(sub, path, out)
  for (const sub of Object.values(schema.patternProperties ?? {})) keysOf(sub, `${path}.*`, out)
  if (typeof schema.additionalProperties === 'object') keysOf(schema.additionalProperties, `${path}.*`, out)
  if (schema.items) keysOf(schema.items, `${path}[]`, out)
  return out
}

/** Where a page can name a config key: the lines of its fenced blocks, and the code spans of the rest. */
interface Mentions {
  readonly fenced: string
  readonly spans: readonly string[]
}

function mentionsIn(pages: readonly string[]): Mentions {
  const fenced: string[] = []
  const spans: string[] = []
  for (const page of pages) {
    const prose: string[] = []
    let inFence = false // per page: an unclosed fence must not turn the next page into code
    for (const line of page.split('\n')) {
      if (/^\s*(```|~~~)/.test(line)) inFence = !inFence
      else (inFence ? fenced : prose).push(line)
    }
    spans.push(...(prose.join('\n').match(/`[^`\n]+`/g) ?? []))
  }
  return { fenced: fenced.join('\n'), spans }
}

function isNamed(key: string, mentions: Mentions): boolean {
  const name = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const word = new RegExp(`\\b${name}\\b`)
  return mentions.spans.some((span) => word.test(span)) || new RegExp(`(^|[\\s{,#])${name}:`, 'm').test(mentions.fenced)
}

it('a key counts as named in a code span or as a YAML key of a fenced example, not in plain prose', () => {
  const page = ['Set `server.host` and then prose_only and `rest_port` together.', 'prose_yaml: in a sentence', '```yaml', 'server: { fenced_key: 1 }', '  # commented_key: 2', '```', 'A `{ spanned_key: 3 }` span.'].join('\n')
  const mentions = mentionsIn([page, 'Another page: `closing_span` and unclosed_key` here'])
  for (const key of ['host', 'rest_port', 'fenced_key', 'commented_key', 'spanned_key', 'server', 'closing_span']) expect(isNamed(key, mentions), key).toBe(true)
  for (const key of ['prose_only', 'prose_yaml', 'unclosed_key', 'together']) expect(isNamed(key, mentions), key).toBe(false)
})

it('every key the config accepts is named in the docs (in a code span, or as a YAML key in an example)', () => {
  const mentions = mentionsIn([join(root, 'README.md'), ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(root, 'docs', f))].map((file) => readFileSync(file, 'utf8')))
  const keys = keysOf(RootSchema as SchemaNode, 'root', new Map())
  keysOf(KafkaSchema as SchemaNode, 'output.kafka', keys)
  for (const kind of executorKinds()) keysOf(getExecutorKind(kind)!.schema as SchemaNode, `models.<${kind}>`, keys)
  for (const name of strategyNames()) keysOf(getStrategy(name)!.options as SchemaNode, `strategy.<${name}>`, keys)
  expect(keys.size).toBeGreaterThan(100)
  const undocumented = [...keys].filter(([, key]) => !isNamed(key, mentions)).map(([path]) => path)
  expect(undocumented).toEqual([])
})
