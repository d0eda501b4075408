// Every key the config accepts is named in the docs: a key the loader takes but no page
// mentions (output.kafka.client_id was one) is a setting operators cannot find.
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

it('every key the config accepts is named in the docs (in a code span, or as a YAML key in an example)', () => {
  const docs = [join(root, 'README.md'), ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(root, 'docs', f))]
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n')
  const keys = keysOf(RootSchema as SchemaNode, 'root', new Map())
  keysOf(KafkaSchema as SchemaNode, 'output.kafka', keys)
  for (const kind of executorKinds()) keysOf(getExecutorKind(kind)!.schema as SchemaNode, `models.<${kind}>`, keys)
  for (const name of strategyNames()) keysOf(getStrategy(name)!.options as SchemaNode, `strategy.<${name}>`, keys)
  expect(keys.size).toBeGreaterThan(100)
  const undocumented = [...keys].filter(([, key]) => !new RegExp(`\`[^\`\\n]*\\b${key}\\b[^\`\\n]*\`|(^|[\\s{,#])${key}:`, 'm').test(docs)).map(([path]) => path)
  expect(undocumented).toEqual([])
})
