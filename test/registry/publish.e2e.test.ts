// `specserve publish-model` against a real Kafka broker whose models topic takes small
// messages (a topic-level max.message.bytes, as an operator may set it): a model under the
// limit is published, one over it is refused with the message a user acts on (the limit to
// raise, on the topic and the brokers, or --location) and exit code 1.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeDescriptor } from '../../src/registry/descriptor.ts'
import { sha256Hex } from '../../src/registry/sha256.ts'
import { root, startProcess } from '../helpers.ts'
import { createTopic, startBroker, type Broker } from '../output/broker.ts'

const TOPIC = 'specserve.models.small'
/** The topic's max.message.bytes: the logistic regression (1 KB) fits, the MLP (5.7 KB) does not. */
const MAX_MESSAGE_BYTES = 4096

let broker: Broker

beforeAll(async () => {
  broker = await startBroker()
  await createTopic(broker.bootstrap, TOPIC, 1, { 'max.message.bytes': String(MAX_MESSAGE_BYTES) })
})
afterAll(async () => {
  await broker?.destroy()
})

async function publish(...model: string[]): Promise<{ code: number | null; output: string }> {
  const args = ['publish-model', '--brokers', broker.bootstrap, '--topic', TOPIC, '--name', 'cancer-main', '--version', '2', ...model]
  const proc = startProcess(process.execPath, [join(root, 'src', 'cli.ts'), ...args])
  const [code] = (await once(proc.child, 'exit')) as [number | null]
  return { code, output: proc.output() }
}

describe('publish-model to a topic whose max.message.bytes the model is over', () => {
  it('publishes a model under the limit', async () => {
    const { code, output } = await publish(join(root, 'models', 'cancer_logreg.onnx'))
    expect(output).toMatch(/^published cancer-main version 2 to specserve\.models\.small \(\d+ bytes, sha256 [0-9a-f]{64}\)\n$/)
    expect(code).toBe(0)
  })

  it('refuses one over it naming the limits to raise, or --location, exit 1', async () => {
    const data = readFileSync(join(root, 'models', 'cancer_mlp.onnx'))
    const bytes = encodeDescriptor({ name: 'cancer-main', version: 2, description: '', modelType: 'onnx', payload: { kind: 'data', data }, sha256: sha256Hex(data) }).byteLength
    const { code, output } = await publish(join(root, 'models', 'cancer_mlp.onnx'))
    expect(output).toMatch(
      new RegExp(
        `^publish-model failed: the broker refused the model's ${bytes} bytes as too large \\(.*MESSAGE_TOO_LARGE.*\\): ` +
          'raise max\\.message\\.bytes on the topic \\(and message\\.max\\.bytes on the brokers\\), or publish --location with the file served over HTTP\n$',
      ),
    )
    expect(code).toBe(1)
  })

  it('with --location and --sha256: the record carries that sha256 (lowercase, as the gateway compares it), so a replay is known before its location is read', async () => {
    const { code, output } = await publish('--location', 'http://models.example/cancer.onnx', '--sha256', 'AB'.repeat(32))
    expect(output).toMatch(new RegExp(`^published cancer-main version 2 to specserve\\.models\\.small \\(\\d+ bytes, sha256 ${'ab'.repeat(32)}\\)\n$`))
    expect(code).toBe(0)
  })
})
