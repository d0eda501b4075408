// Readiness while a new gateway instance catches up on the model stream, against a real Kafka
// broker. Versions published before the gateway starts: a new instance name (a new consumer
// group, an empty repository) replays them one by one, and /readyz says 503 `waiting`, with
// the reason, at every version it serves on the way; it turns 200 only once the latest serves.
// Started again under the same name, its group's commits are at the end: ready without a
// record handled. Two gateways under one instance name share a group and split a two-partition
// topic: each logs that another consumer reads the rest. A topic written in transactions ends
// with a commit (or abort) marker no record is delivered at: caught up all the same. On brokers
// that create no topic, a models topic not created yet has nothing to catch up to: ready at
// once. Each step awaits an event (a version judged, readiness let go, a log line), never a clock.
import { EventEmitter, once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Producer, stringSerializers } from '@platformatic/kafka'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { parseConfig } from '../../src/config/load.ts'
import { Gateway } from '../../src/gateway.ts'
import { encodeDescriptor } from '../../src/registry/descriptor.ts'
import { Registry } from '../../src/registry/registry.ts'
import { sha256Hex } from '../../src/registry/sha256.ts'
import type { VersionMeta } from '../../src/registry/version-meta.ts'
import type { Logger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { createTopic, startBroker, type Broker } from '../output/broker.ts'
import { tempDir } from '../temp-dirs.ts'

const models = join(root, 'models')
const TOPIC = 'specserve.models.catch-up'
/** Versions 2 to LATEST are on the topic before the gateway starts (the seed is version 1). */
const LATEST = 7

interface Instance {
  readonly registry: Registry
  readonly gateway: Gateway
  readonly app: FastifyInstance
  /** Every log line's message is emitted here, with its fields. */
  readonly logged: EventEmitter
  close(): Promise<void>
}

let broker: Broker
const open: Instance[] = []

/** A gateway as `serve` wires its registry, in process: its REST app answers /readyz. The load is left to the test. */
function instance(dir: string, name: string, topic: string): Instance {
  const file = join(dir, 'gateway.yaml')
  const yaml = `
server: { instance: ${name} }
executors: { onnx_workers: 1 }
repository: { path: ./repo, kafka: { brokers: ["${broker.bootstrap}"], topic: ${topic}, group: specserve-models } }
models:
  cancer-main: { kind: onnx, source: repository, path: ${models}/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main], budget_ms: { default: 5000, max: 10000 } }
`
  writeFileSync(file, yaml)
  const config = parseConfig(yaml, file)
  const registry = Registry.open(config)!
  const gateway = new Gateway(config, { versions: registry })
  const app = buildServer(config, { gateway, registry })
  const logged = new EventEmitter()
  const log: Logger = { info: (obj, msg) => logged.emit(msg, obj), warn: (obj, msg) => logged.emit(msg, obj), error: (obj, msg) => logged.emit(msg, obj) }
  registry.attach(gateway, log)
  const made: Instance = {
    registry,
    gateway,
    app,
    logged,
    async close() {
      open.splice(open.indexOf(made), 1)
      await registry.close()
      await app.close()
      await gateway.close()
    },
  }
  open.push(made)
  return made
}

interface Readyz {
  readonly status: number
  readonly body: { ready: boolean; status: string; waiting_for?: { model_stream?: string }; model_stream?: { catch_up?: { state: string; handled: number; left: number | null } } }
}
const readyz = async (app: FastifyInstance): Promise<Readyz> => {
  const res = await app.inject('/readyz')
  return { status: res.statusCode, body: res.json() }
}

/** cancer-main's descriptor for `version`, carrying `file`'s model. */
function descriptor(version: number, file: string): Buffer {
  const data = readFileSync(join(models, file))
  return Buffer.from(encodeDescriptor({ name: 'cancer-main', version, description: '', modelType: 'onnx', payload: { kind: 'data', data }, sha256: sha256Hex(data) }))
}

/** Resolves once `registry` has judged `version` of cancer-main. */
const settled = (registry: Registry, version: number): Promise<VersionMeta> =>
  new Promise((resolve) => {
    const on = (model: string, meta: VersionMeta): void => {
      if (model !== 'cancer-main' || meta.version !== version) return
      registry.off('settled', on)
      resolve(meta)
    }
    registry.on('settled', on)
  })

beforeAll(async () => {
  broker = await startBroker()
  await createTopic(broker.bootstrap, TOPIC)
  // Versions 2..LATEST, the two cancer models in turn: each a different file from the one before.
  const files = ['cancer_mlp.onnx', 'cancer_logreg.onnx'].map((f) => readFileSync(join(models, f)))
  const producer = new Producer({ clientId: 'specserve-test-catch-up', bootstrapBrokers: [broker.bootstrap], serializers: { ...stringSerializers, value: (value?: Buffer) => value } })
  try {
    const messages = Array.from({ length: LATEST - 1 }, (_, i) => {
      const data = files[i % 2]!
      const value = Buffer.from(encodeDescriptor({ name: 'cancer-main', version: i + 2, description: '', modelType: 'onnx', payload: { kind: 'data', data }, sha256: sha256Hex(data) }))
      return { topic: TOPIC, key: 'cancer-main', value }
    })
    await producer.send({ messages })
  } finally {
    await producer.close()
  }
})

afterAll(async () => {
  for (const i of [...open]) await i.close()
  await broker?.destroy()
})

describe('a new instance on a topic that holds versions already', () => {
  const dir = tempDir('specserve-catch-up-')

  it('is not ready while it replays them (predicts are served meanwhile), and ready once the latest serves', { timeout: 120_000 }, async () => {
    const gw = instance(dir, 'gw-new', TOPIC)
    // What /readyz said as each version before the latest was judged: the replay's way through.
    const along: Promise<Readyz & { version: number }>[] = []
    gw.registry.on('settled', (model, meta) => {
      if (model === 'cancer-main' && meta.version >= 2 && meta.version < LATEST) along.push(readyz(gw.app).then((r) => ({ ...r, version: meta.version })))
    })
    const latest = settled(gw.registry, LATEST)
    await gw.gateway.load()
    // Loaded, the seed serving: a load balancer must not send traffic yet.
    const loaded = await readyz(gw.app)
    expect(loaded.status).toBe(503)
    expect(loaded.body).toMatchObject({ ready: false, status: 'waiting', waiting_for: { model_stream: expect.stringMatching(/^catching up: /) } })
    expect(gw.registry.serving('cancer-main')).toBe(1)
    // Readiness is for load balancers: a predict sent all the same is answered (by the seed).
    const predict = await gw.app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: [samples('cancer').rows[0]] } } })
    expect(predict.statusCode).toBe(200)

    await gw.registry.start()
    expect((await latest).state).toBe('serving')
    await gw.gateway.holds.released()

    const seen = await Promise.all(along)
    expect(seen.map((s) => s.version)).toEqual([2, 3, 4, 5, 6])
    for (const s of seen) {
      expect(s.status, `version ${s.version}`).toBe(503)
      expect(s.body.status).toBe('waiting')
      expect(s.body.waiting_for?.model_stream).toMatch(/^catching up: (\d+ records? handled, \d+ left to the topic's end as first read|the topic's end offsets are not read yet)/)
    }
    // One reason, as the stream went: records handled and left add up to the topic's end.
    const counted = seen.map((s) => /(\d+) records? handled, (\d+) left/.exec(s.body.waiting_for!.model_stream!)).filter((m) => m !== null)
    for (const m of counted) expect(Number(m[1]) + Number(m[2])).toBe(LATEST - 1)

    const ready = await readyz(gw.app)
    expect(ready.status).toBe(200)
    expect(ready.body).toMatchObject({ ready: true, status: 'ready', model_stream: { catch_up: { state: 'caught_up', handled: LATEST - 1, left: 0 } } })
    expect(gw.registry.serving('cancer-main')).toBe(LATEST)
    await gw.close()
  })

  it('started again under the same name (its commits at the end), is ready without handling a record', { timeout: 60_000 }, async () => {
    const gw = instance(dir, 'gw-new', TOPIC)
    await gw.gateway.load()
    expect(gw.registry.serving('cancer-main')).toBe(LATEST) // from its repository
    await startsCaughtUp(gw, 0)
    await gw.close()
  })
})

/** Starts `gw`'s model stream: it says it caught up having handled `handled` records, and /readyz is 200 saying so. */
async function startsCaughtUp(gw: Instance, handled: number): Promise<void> {
  const caughtUp = once(gw.logged, 'model stream caught up: readiness no longer waits for it')
  await gw.registry.start()
  const [fields] = (await caughtUp) as [{ handled: number }]
  expect(fields.handled).toBe(handled)
  const ready = await readyz(gw.app)
  expect(ready.status).toBe(200)
  expect(ready.body.model_stream?.catch_up).toMatchObject({ state: 'caught_up', handled, left: 0 })
}

describe('two gateways under one instance name', () => {
  it('share a consumer group and split the topic: each says another consumer reads the rest', { timeout: 120_000 }, async () => {
    const topic = 'specserve.models.shared'
    await createTopic(broker.bootstrap, topic, 2)
    const shared = 'model stream: this gateway was given 1 of the models topic\'s 2 partitions: another consumer in its group reads the rest, so neither sees every version. Is another gateway running with the same instance name (SPECSERVE_INSTANCE)? Give each its own'
    const twins = [instance(tempDir('specserve-twin-'), 'twin', topic), instance(tempDir('specserve-twin-'), 'twin', topic)]
    const warned = twins.map((gw) => once(gw.logged, shared) as Promise<[{ group: string; partitions: number[]; topic_partitions: number }]>)
    for (const gw of twins) await gw.gateway.load()
    await Promise.all(twins.map((gw) => gw.registry.start()))
    const fields = (await Promise.all(warned)).map(([f]) => f)
    expect(fields.map((f) => f.group)).toEqual(['specserve-models-twin', 'specserve-models-twin'])
    expect(fields.flatMap((f) => f.partitions).sort()).toEqual([0, 1])
    for (const gw of twins) await gw.close()
  })
})

describe('a models topic written in transactions', () => {
  it('is caught up past the commit marker and an aborted transaction at its end (no record is delivered there)', { timeout: 60_000 }, async () => {
    const topic = 'specserve.models.transactional'
    await createTopic(broker.bootstrap, topic)
    const producer = new Producer({ clientId: 'specserve-test-txn', bootstrapBrokers: [broker.bootstrap], serializers: { ...stringSerializers, value: (value?: Buffer) => value }, idempotent: true, transactionalId: 'specserve-test-txn' })
    try {
      const committed = await producer.beginTransaction()
      await committed.send({ messages: [{ topic, key: 'cancer-main', value: descriptor(2, 'cancer_mlp.onnx') }] })
      await committed.commit()
      const aborted = await producer.beginTransaction()
      await aborted.send({ messages: [{ topic, key: 'cancer-main', value: descriptor(3, 'cancer_logreg.onnx') }] })
      await aborted.abort()
    } finally {
      await producer.close()
    }
    // Offsets: 0 the record, 1 its commit marker, 2 the aborted record, 3 the abort marker; the end is 4.
    const gw = instance(tempDir('specserve-catch-up-txn-'), 'gw-txn', topic)
    await gw.gateway.load()
    await startsCaughtUp(gw, 1)
    expect(gw.registry.serving('cancer-main')).toBe(2)
    await gw.close()
  })
})

describe('brokers that create no topic (auto.create.topics.enable=false)', () => {
  it('a models topic not created yet: ready at once, nothing to catch up to', { timeout: 60_000 }, async () => {
    // Not a dynamic broker setting: the broker restarts with it (the tests above are done with it).
    await broker.stop()
    const properties = join(broker.dir, 'server.properties')
    writeFileSync(properties, (await readFile(properties, 'utf8')).replace('auto.create.topics.enable=true', 'auto.create.topics.enable=false'))
    await broker.start()
    const gw = instance(tempDir('specserve-catch-up-none-'), 'gw-none', 'specserve.models.not-created')
    const missing = once(gw.logged, 'model stream: the models topic does not exist: nothing to catch up to')
    const caughtUp = once(gw.logged, 'model stream caught up: readiness no longer waits for it')
    await gw.gateway.load()
    await gw.registry.start()
    await missing
    await caughtUp
    const ready = await readyz(gw.app)
    expect(ready.status).toBe(200)
    expect(ready.body.model_stream?.catch_up).toMatchObject({ state: 'caught_up', handled: 0, left: 0 })
    await gw.close()
  })
})
