// What a start loads. @platformatic/kafka compiles its options' schemas when imported (about
// 0.6 s of CPU, a quarter of a start, and ~50 MB): the CLI loads it only for a config that talks
// to Kafka, and on the event loop only for what runs there (stream mode's consumer, the model
// stream, publish-model); the record sink's producer loads it when it is made (on a thread of
// its own with output.kafka.producer_thread).
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { root } from './helpers.ts'

/** The bare specifiers a fresh Node resolves while importing `module` (a path under src/). */
function packagesLoadedBy(module: string): string[] {
  const script = `
    import { registerHooks } from 'node:module'
    const seen = new Set()
    registerHooks({ resolve(specifier, context, next) { if (!/^[.\\/]|^node:|^file:/.test(specifier)) seen.add(specifier); return next(specifier, context) } })
    await import(${JSON.stringify(join(root, 'src', module))})
    console.log(JSON.stringify([...seen]))`
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' })) as string[]
}

describe('the CLI loads Kafka only when a config talks to Kafka', () => {
  it("serve's and validate's modules leave @platformatic/kafka out", () => {
    const loaded = packagesLoadedBy('cli-modules.ts')
    expect(loaded).toContain('fastify') // the hook saw the imports
    expect(loaded).not.toContain('@platformatic/kafka')
  })

  it("the record sink's parts leave it out: its producer loads it when it is made", () => {
    expect(packagesLoadedBy('cli-kafka.ts')).not.toContain('@platformatic/kafka')
    expect(packagesLoadedBy('kafka/producer.ts')).toContain('@platformatic/kafka')
  })

  it('stream mode, the model stream and publish-model load it', () => {
    for (const module of ['api/kafka/index.ts', 'registry/stream.ts', 'registry/publish.ts']) expect(packagesLoadedBy(module), module).toContain('@platformatic/kafka')
  })
})
