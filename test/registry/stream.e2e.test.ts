// The model stream against a real Kafka broker: two gateway instances (each its own
// repository and consumer group) both switch when `specserve publish-model` publishes a
// version, and when a non-Node producer (Google's protobuf runtime in Python, sent by kcat)
// publishes one, which shows the wire format is the documented ModelDescriptor. Bad records
// (wrong sha256, unknown model, a location that 404s, a version under the gate) are
// rejected with their reason and nothing serving changes. A backlog larger than the stream
// holds at once waits in Kafka while a slow judge works through it, every record judged in order.
// After a broker outage, each instance's stream reopens by itself and reads on.
import { execFile } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Producer, stringSerializers } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { parseConfig } from '../../src/config/load.ts'
import { inputFailure } from '../../src/errors.ts'
import { Gateway } from '../../src/gateway.ts'
import { decodeDescriptor, encodeDescriptor } from '../../src/registry/descriptor.ts'
import { Registry } from '../../src/registry/registry.ts'
import { sha256Hex } from '../../src/registry/sha256.ts'
import type { VersionMeta } from '../../src/registry/version-meta.ts'
import { MAX_HELD, ModelStream } from '../../src/registry/stream.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import { silentLogger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { committedOffsets, createTopic, ensureKcat, startBroker, type Broker } from '../output/broker.ts'
import { eventually } from '../output/serve.ts'
import { tempDir } from '../temp-dirs.ts'

const run = promisify(execFile)
const models = join(root, 'models')
const examples = join(root, 'examples')
const TOPIC = 'specserve.models.e2e'
const cancer = samples('cancer')

interface Instance {
  readonly name: string
  readonly dir: string
  readonly registry: Registry
  readonly gateway: Gateway
}

let broker: Broker
let python: string
let kcatPath: string
let http: Server
let httpBase: string
const instances: Instance[] = []

async function startInstance(name: string): Promise<Instance> {
  const dir = tempDir(`specserve-stream-${name}-`)
  const file = join(dir, 'gateway.yaml')
  const yaml = `
server: { instance: ${name} }
executors: { onnx_workers: 1 }
repository: { path: ./repo, kafka: { brokers: ["${broker.bootstrap}"], topic: ${TOPIC}, group: specserve-models } }
models:
  cancer-main:
    kind: onnx
    source: repository
    path: ${models}/cancer_logreg.onnx
    validation: { examples: ${examples}/cancer_examples.jsonl, dataset: { path: ${examples}/cancer_holdout.csv, label: target, min_accuracy: 0.96 } }
  cancer-fallback: { kind: onnx, path: ${models}/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-fallback], budget_ms: { default: 5000, max: 10000 } }
`
  writeFileSync(file, yaml)
  const config = parseConfig(yaml, file)
  const registry = Registry.open(config)!
  const gateway = new Gateway(config, { versions: registry })
  registry.attach(gateway, silentLogger)
  await gateway.load()
  await registry.start()
  return { name, dir, registry, gateway }
}

/** Resolves once every instance has judged a version of cancer-main (serving, rejected or kept). */
const settledOnAll = (version: number): Promise<VersionMeta[]> =>
  Promise.all(
    instances.map(
      (i) =>
        new Promise<VersionMeta>((resolve) => {
          const on = (model: string, meta: VersionMeta): void => {
            if (model !== 'cancer-main' || meta.version !== version) return
            i.registry.off('settled', on)
            resolve(meta)
          }
          i.registry.on('settled', on)
        }),
    ),
  )

/** Resolves with each instance's next model stream record (result and reason). */
const nextRecordOnAll = (): Promise<[string, string, string | null][]> => Promise.all(instances.map((i) => once(i.registry.stream!, 'record') as Promise<[string, string, string | null]>))

async function servingVersions(): Promise<string[]> {
  return Promise.all(
    instances.map(async ({ gateway }) => {
      const spec = gateway.ensemble('cancer').inputs[0]!
      const result = await gateway.predict({ id: 'v', ensemble: 'cancer', inputs: { input: tensorFromJson([cancer.rows[0]], spec, inputFailure) } })
      expect(result.error).toBeNull()
      return result.models.find((m) => m.name === 'cancer-main')!.version
    }),
  )
}

async function kcat(args: readonly string[]): Promise<string> {
  return (await run(kcatPath, ['-b', broker.bootstrap, ...args], { maxBuffer: 16 * 1024 * 1024, encoding: 'latin1' })).stdout
}

/** A descriptor written by Python's protobuf runtime, produced by kcat (librdkafka) keyed by the model name. */
async function publishWithKcat(file: string, key: string, args: readonly string[]): Promise<void> {
  await run(python, [join(root, 'test/registry/descriptor.py'), 'encode', file, ...args])
  await kcat(['-P', '-t', TOPIC, '-k', key, file])
}

beforeAll(async () => {
  // The broker's JVM starts while Python and kcat are looked for: neither needs the other.
  ;[python, kcatPath] = await Promise.all([
    run('bash', [join(root, 'scripts/python-env.sh')]).then((r) => r.stdout.trim()),
    ensureKcat(),
    startBroker().then((b) => (broker = b)),
  ])
  // No topic made here: the gateways create the models topic themselves, as publish-model does.
  // A model server for `location` URLs: the MLP at /mlp.onnx, 404 for anything else.
  http = createServer((req, res) => {
    if (req.url === '/mlp.onnx') res.end(readFileSync(join(models, 'cancer_mlp.onnx')))
    else res.writeHead(404).end('not found')
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  httpBase = `http://127.0.0.1:${(http.address() as { port: number }).port}`
  // Side by side: each loads and gates its models on its own.
  instances.push(...(await Promise.all([startInstance('gw-a'), startInstance('gw-b')])))
})

afterAll(async () => {
  for (const i of instances) {
    await i.registry.close()
    await i.gateway.close()
  }
  http?.close()
  await broker?.destroy()
})

describe('model stream', () => {
  it('each instance reads in its own consumer group, from a models topic it created itself', async () => {
    expect(instances.map((i) => i.registry.stream!.groupId)).toEqual(['specserve-models-gw-a', 'specserve-models-gw-b'])
    const states = await eventually('both consuming', async () => instances.map((i) => i.registry.stream!.status() as { state: string; last_error: string | null }), (s) => s.every((x) => x.state === 'consuming'), 20_000)
    expect(states.map((s) => s.last_error)).toEqual([null, null])
  })

  it('specserve publish-model: both instances gate the version and switch to it', async () => {
    const settled = settledOnAll(2)
    const { stdout } = await run(process.execPath, ['src/cli.ts', 'publish-model', '--brokers', broker.bootstrap, '--topic', TOPIC, '--name', 'cancer-main', '--version', '2', '--description', 'retrained MLP', join(models, 'cancer_mlp.onnx')], { cwd: root })
    expect(stdout).toMatch(/published cancer-main version 2/)
    for (const meta of await settled) expect(meta).toMatchObject({ version: 2, state: 'serving', source: 'kafka', description: 'retrained MLP', sha256: sha256Hex(readFileSync(join(models, 'cancer_mlp.onnx'))) })
    expect(await servingVersions()).toEqual(['2', '2'])
  })

  it('what publish-model wrote is the documented ModelDescriptor, read by kcat and decoded by Python protobuf', async () => {
    const dir = instances[0]!.dir
    const raw = await kcat(['-C', '-t', TOPIC, '-o', 'beginning', '-c', '1', '-e', '-q', '-f', '%s'])
    writeFileSync(join(dir, 'first.bin'), Buffer.from(raw, 'latin1'))
    const { stdout } = await run(python, [join(root, 'test/registry/descriptor.py'), 'decode', join(dir, 'first.bin')])
    const mlp = readFileSync(join(models, 'cancer_mlp.onnx'))
    expect(JSON.parse(stdout)).toEqual({
      name: 'cancer-main', version: 2, description: 'retrained MLP', model_type: 'onnx', payload: 'data',
      data_bytes: mlp.length, data_sha256: sha256Hex(mlp), location: '', sha256: sha256Hex(mlp),
    })
  })

  // cancer_slow: its bytes are new to the repository (a copy of version 1 would be a duplicate); its gate takes seconds.
  it('a descriptor from Python protobuf produced by kcat (version 0 = next): both switch', { timeout: 120_000 }, async () => {
    const slow = join(models, 'cancer_slow.onnx')
    const settled = settledOnAll(3)
    await publishWithKcat(join(instances[0]!.dir, 'v3.bin'), 'cancer-main', ['--name', 'cancer-main', '--version', '0', '--data', slow, '--sha256', sha256Hex(readFileSync(slow))])
    for (const meta of await settled) expect(meta).toMatchObject({ version: 3, state: 'serving', source: 'kafka' })
    expect(await servingVersions()).toEqual(['3', '3'])
    // Our decoder reads Python's bytes field by field.
    const decoded = decodeDescriptor(readFileSync(join(instances[0]!.dir, 'v3.bin')))
    expect(decoded).toMatchObject({ name: 'cancer-main', version: 0, modelType: 'onnx', payload: { kind: 'data' } })
  })

  it('rejects a wrong sha256, an unknown model, a location that 404s, and a version under the gate; version 3 serves on', async () => {
    const dir = instances[0]!.dir
    const cases: [string, string[], RegExp][] = [
      ['cancer-main', ['--name', 'cancer-main', '--version', '4', '--data', join(models, 'cancer_mlp.onnx'), '--sha256', 'ab'.repeat(32)], /sha256 mismatch: the descriptor says abab/],
      ['fraud', ['--name', 'fraud', '--version', '1', '--data', join(models, 'cancer_mlp.onnx')], /unknown model "fraud"/],
      ['cancer-main', ['--name', 'cancer-main', '--version', '4', '--location', `${httpBase}/gone.onnx`], /location http:\/\/127\.0\.0\.1:\d+\/gone\.onnx: HTTP 404/],
      ['cancer-main', ['--name', 'cancer-main', '--version', '4', '--data', join(models, 'cancer_gbdt.onnx')], /validation gate failed: accuracy 0\.9580 on 143 rows is below min_accuracy 0\.96/],
    ]
    for (const [i, [key, args, reason]] of cases.entries()) {
      const records = nextRecordOnAll()
      await publishWithKcat(join(dir, `bad${i}.bin`), key, args)
      for (const [result, model, why] of await records) {
        expect([result, model]).toEqual(['rejected', key])
        expect(why).toMatch(reason)
      }
    }
    expect(await servingVersions()).toEqual(['3', '3'])
    for (const i of instances) expect(i.registry.list('cancer-main').map((v) => v.version)).toEqual([1, 2, 3, 4])
  })

  it('takes the model from an http(s) location', async () => {
    const settled = settledOnAll(5)
    await publishWithKcat(join(instances[0]!.dir, 'v5.bin'), 'cancer-main', ['--name', 'cancer-main', '--version', '5', '--location', `${httpBase}/mlp.onnx`])
    for (const meta of await settled) expect(meta).toMatchObject({ version: 5, state: 'serving', sha256: sha256Hex(readFileSync(join(models, 'cancer_mlp.onnx'))) })
    expect(await servingVersions()).toEqual(['5', '5'])
  })

  it('reads on after a broker outage: each stream reopens by itself, and a version published once the broker is back switches both', { timeout: 180_000 }, async () => {
    const state = (): { state: string; last_error: string | null }[] => instances.map((i) => i.registry.stream!.status() as { state: string; last_error: string | null })
    await broker.stop()
    // Their fetches fail until the library ends each stream; then they try to open one again.
    await eventually('both model streams lost', async () => state(), (s) => s.every((x) => x.state === 'reconnecting'), 120_000)
    await broker.start()
    await eventually('both model streams consuming again', async () => state(), (s) => s.every((x) => x.state === 'consuming'), 120_000)
    // What the outage said is past: /readyz pairs last_error with reconnecting.
    expect(state().map((s) => s.last_error)).toEqual([null, null])
    const settled = settledOnAll(6)
    await run(process.execPath, ['src/cli.ts', 'publish-model', '--brokers', broker.bootstrap, '--topic', TOPIC, '--name', 'cancer-main', '--version', '6', join(models, 'cancer_mlp.onnx')], { cwd: root })
    for (const meta of await settled) expect(meta).toMatchObject({ version: 6, state: 'serving', source: 'kafka' })
    expect(await servingVersions()).toEqual(['6', '6'])
  })
})

describe('a backlog on the model stream', () => {
  it('is read a few records at a time: the consumer pauses while MAX_HELD are held, and every record is judged and committed in order', { timeout: 120_000 }, async () => {
    const topic = 'specserve.models.backlog'
    const N = 10 // several times the bound
    await createTopic(broker.bootstrap, topic)
    const producer = new Producer({ clientId: 'specserve-test-backlog', bootstrapBrokers: [broker.bootstrap], serializers: { ...stringSerializers, value: (value?: Buffer) => value } })
    try {
      const model = (i: number): Buffer => Buffer.from(`model ${i} `.repeat(4000)) // ~40 KB each, one batch in all
      const messages = Array.from({ length: N }, (_, i) => ({ topic, key: 'm', value: Buffer.from(encodeDescriptor({ name: 'm', version: 0, description: '', modelType: 'onnx', payload: { kind: 'data', data: model(i) }, sha256: '' })) }))
      await producer.send({ messages })
    } finally {
      await producer.close()
    }
    // A slow judge: each arrival waits until the test lets it go (no clock); all go once the test ends.
    const arrivals: { index: number; done: () => void }[] = []
    const arrived = new EventEmitter()
    let ending = false
    const registry = {
      isRepositoryModel: (name: string) => name === 'm',
      versionWithSha: () => Promise.resolve(undefined),
      arrive: (_name: string, bytes: Uint8Array) =>
        new Promise<VersionMeta>((resolve) => {
          const done = (): void => resolve({ version: arrivals.length, state: 'serving', reason: null } as VersionMeta)
          arrivals.push({ index: Number(/^model (\d+)/.exec(Buffer.from(bytes).toString('latin1'))![1]), done })
          arrived.emit('arrival')
          if (ending) done()
        }),
    } as unknown as Registry
    const repository = { ...instances[0]!.registry.repository, kafka: { brokers: [broker.bootstrap], topic, group: 'specserve-backlog', catchUpTimeoutMs: 0 } }
    const stream = new ModelStream(registry, repository, 'slow', silentLogger)
    // What the consumer handed over, and the most handed over and not judged at any moment.
    let delivered = 0
    let judged = 0
    let mostHeld = 0
    const receive = stream.receive.bind(stream)
    vi.spyOn(stream, 'receive').mockImplementation((message) => {
      delivered++
      mostHeld = Math.max(mostHeld, delivered - judged)
      receive(message)
      arrived.emit('delivered')
    })
    const results: string[] = []
    stream.on('record', (result) => {
      judged++
      results.push(result)
    })
    const until = async (event: string, done: () => boolean): Promise<void> => {
      while (!done()) await once(arrived, event)
    }
    await stream.start()
    try {
      for (let i = 0; i < N; i++) {
        await until('arrival', () => arrivals.length > i)
        // The consumer has handed over all it will while this record is judged: the bound, or the rest of the backlog.
        await until('delivered', () => delivered - judged >= Math.min(MAX_HELD, N - i))
        expect({ record: i, mostHeld, status: stream.status() }).toMatchObject({ record: i, mostHeld: MAX_HELD, status: { held: Math.min(MAX_HELD, N - i), paused: N - i >= MAX_HELD } })
        expect(delivered).toBe(i + Math.min(MAX_HELD, N - i))
        const judgedNow = once(stream, 'record')
        arrivals[i]!.done()
        await judgedNow
      }
    } finally {
      ending = true
      for (const a of arrivals) a.done()
      await stream.close()
    }
    expect(arrivals.map((a) => a.index)).toEqual([...Array(N).keys()])
    expect(results).toEqual(Array(N).fill('accepted'))
    expect(stream.status()).toMatchObject({ accepted: N, held: 0, peak_held: MAX_HELD })
    expect(await committedOffsets(broker.bootstrap, stream.groupId, topic, 1)).toEqual([BigInt(N)])
  })
})
