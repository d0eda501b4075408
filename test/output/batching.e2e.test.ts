// How the sink cuts serving records into produce requests, on a real broker: a full batch
// goes at once, records that arrive while a batch is on the wire wait out their linger
// instead of going as a request of their own, no request carries more than batch_bytes,
// order holds across all of it, a request the topic refuses as too large is split and a
// record it refuses dropped, and every compression the client supports reaches a stock
// consumer intact.
import { join } from 'node:path'
import { Admin } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Gateway } from '../../src/gateway.ts'
import { kafkaSettings, spoolFile } from '../../src/kafka/config.ts'
import { KafkaSink } from '../../src/output/kafka.ts'
import { PendingRecord } from '../../src/output/record.ts'
import { Spool } from '../../src/output/spool.ts'
import { buildServer } from '../../src/api/rest/server.ts'
import { silentLogger } from '../../src/types.ts'
import { configFrom, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { consumeUntil, startBroker, type Broker, type TextMessage } from './broker.ts'
import { eventually } from './serve.ts'

let broker: Broker
let dir: string
/** Records of real predicts (one per row), written to the sinks under test as each test chooses. */
let records: PendingRecord[] = []

beforeAll(async () => {
  broker = await startBroker()
  dir = tempDir('specserve-batching-')
  const config = configFrom(`
models:
  logreg: { kind: onnx, path: ../models/cancer_logreg.onnx, version: "3" }
ensembles:
  cancer: { strategy: deadline-fallback, models: [logreg], budget_ms: { default: 500, max: 1000 } }
`)
  const gateway = new Gateway(config)
  const app = buildServer(config, { gateway })
  await gateway.load()
  gateway.hooks.onResult = (result, req) => void records.push(new PendingRecord(result.ensemble, result, req.inputs, Date.now(), null, false, 'batching-test'))
  const rows = samples('cancer').rows
  for (let i = 0; i < 40; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { id: `r${i}`, inputs: { input: [rows[i % rows.length]] } } })
    expect(res.statusCode).toBe(200)
  }
  await app.close()
  await gateway.close()
  records = records.slice(0, 40)
}, 120_000)

afterAll(async () => {
  await broker?.destroy()
})

function sinkFor(topic: string, kafka: Record<string, unknown>): KafkaSink {
  const settings = kafkaSettings({ kafka: { brokers: [broker.bootstrap], topic, spool_dir: join(dir, topic), ...kafka } }, dir)
  const sink = new KafkaSink(settings!, silentLogger)
  sink.start()
  return sink
}

const idsOf = (messages: readonly TextMessage[]): string[] => messages.map((m) => (JSON.parse(m.value) as { id: string }).id)
const counters = (sink: KafkaSink): { published: number; batches: number; buffered: number } => {
  const s = sink.status() as unknown as { published: number; batches: number; buffered: number }
  return { published: s.published, batches: s.batches, buffered: s.buffered }
}

describe('record batching on a real broker', () => {
  it('sends a full batch at once and holds what arrives during its send for the linger, not a request of its own', { timeout: 120_000 }, async () => {
    const topic = 'batching.linger'
    const sink = sinkFor(topic, { batch_size: 10, linger_ms: 600_000 })
    try {
      for (const r of records.slice(0, 10)) sink.write(r)
      // The sink's own zero-delay timer was set first, so it has fired (and the send is on
      // the wire) when this one runs.
      await new Promise((resolve) => setTimeout(resolve, 0))
      for (const r of records.slice(10, 13)) sink.write(r)
      await eventually('first batch acknowledged', async () => counters(sink), (c) => c.published >= 10)
      expect(counters(sink)).toEqual({ published: 10, batches: 1, buffered: 3 })
      for (const r of records.slice(13, 20)) sink.write(r) // fills the second batch: it goes without waiting the linger
      await eventually('second batch acknowledged', async () => counters(sink), (c) => c.published >= 20)
      expect(counters(sink)).toEqual({ published: 20, batches: 2, buffered: 0 })
    } finally {
      await sink.close(10_000)
    }
    const messages = await consumeUntil(broker.bootstrap, topic, (got) => got.length >= 20)
    expect(idsOf(messages)).toEqual(records.slice(0, 20).map((r) => r.result.id))
  })

  it('keeps every produce request within batch_bytes (a larger record alone), in order', { timeout: 120_000 }, async () => {
    const sizes = records.map((r) => Buffer.byteLength(r.encode()) + Buffer.byteLength(r.key ?? ''))
    const largest = Math.max(...sizes)
    const smallest = Math.min(...sizes)
    expect(largest * 2).toBeLessThan(smallest * 3) // so that a batch of 2.5 largest records holds exactly two
    const cases = [
      { topic: 'batching.bytes.two', batchBytes: Math.floor(largest * 2.5), batches: 20 },
      { topic: 'batching.bytes.one', batchBytes: 1, batches: 40 },
    ]
    for (const { topic, batchBytes, batches } of cases) {
      const sink = sinkFor(topic, { batch_size: 1000, linger_ms: 0, batch_bytes: batchBytes })
      for (const r of records) sink.write(r)
      await sink.close(30_000)
      expect(counters(sink)).toMatchObject({ published: 40, batches })
      const messages = await consumeUntil(broker.bootstrap, topic, (got) => got.length >= 40)
      expect(idsOf(messages)).toEqual(records.map((r) => r.result.id))
    }
  })

  it('drops a spooled record over max_record_bytes when it replays the spool, and publishes the rest in order', { timeout: 120_000 }, async () => {
    const topic = 'batching.spooled.large'
    // A spool left by a run that took the large record (an older version, or a higher limit).
    const spoolDir = join(dir, topic)
    const [a, b] = [records[0]!, records[1]!]
    const left = new Spool(spoolFile({ spoolDir, topic }), 1 << 30)
    left.open()
    left.append([
      { key: a.key, value: a.encode() },
      { key: 'cancer', value: JSON.stringify({ pad: 'x'.repeat(5000) }) },
      { key: b.key, value: b.encode() },
    ])
    left.close()
    const sink = sinkFor(topic, { max_record_bytes: 4000 })
    try {
      await eventually('spool replayed', async () => sink.status(), (s) => s.spooled_records === 0 && s.published === 2)
      expect(sink.status()).toMatchObject({ dropped: 1, published: 2 })
    } finally {
      await sink.close(10_000)
    }
    const messages = await consumeUntil(broker.bootstrap, topic, (got) => got.length >= 2)
    expect(idsOf(messages)).toEqual([a.result.id, b.result.id])
  })

  /** A topic that takes messages (record batches) of at most `maxMessageBytes`, as a broker operator may have set it. */
  async function smallTopic(topic: string, maxMessageBytes: number): Promise<void> {
    const admin = new Admin({ clientId: 'specserve-test-admin', bootstrapBrokers: [broker.bootstrap] })
    try {
      await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1, configs: [{ name: 'max.message.bytes', value: String(maxMessageBytes) }] })
    } finally {
      await admin.close()
    }
  }
  const huge = { key: 'cancer', encode: () => JSON.stringify({ id: 'huge', pad: 'x'.repeat(30_000) }) } as unknown as PendingRecord

  it.each(['directly', 'from the spool'])(
    'splits a request the topic refuses as too large, drops (and counts) a record it refuses, and publishes the rest in order, %s',
    { timeout: 120_000 },
    async (how) => {
      const topic = `batching.refused.${how === 'directly' ? 'direct' : 'spool'}`
      // 40 records (~25 KB) in one request, and one record of 30 KB among them: the topic takes 20 KB.
      await smallTopic(topic, 20_000)
      const written = [...records.slice(0, 20), huge, ...records.slice(20)]
      if (how === 'from the spool') {
        const left = new Spool(spoolFile({ spoolDir: join(dir, topic), topic }), 1 << 30)
        left.open()
        left.append(written.map((r) => ({ key: r.key, value: r.encode() })))
        left.close()
      }
      const sink = sinkFor(topic, { batch_size: 1000, batch_bytes: 100_000, linger_ms: 0 })
      try {
        if (how === 'directly') for (const r of written) sink.write(r)
        await eventually('all but the refused record published', async () => sink.status(), (s) => Number(s.published) + Number(s.dropped) >= 41 && s.spooled_records === 0)
        expect(sink.status()).toMatchObject({ published: 40, dropped: 1, state: 'connected', last_error: expect.stringMatching(/MESSAGE_TOO_LARGE/) })
      } finally {
        await sink.close(10_000)
      }
      const messages = await consumeUntil(broker.bootstrap, topic, (got) => got.length >= 40)
      expect(idsOf(messages)).toEqual(records.map((r) => r.result.id))
    },
  )

  it.each(['gzip', 'snappy', 'lz4', 'zstd'])('publishes %s-compressed batches a stock consumer reads back intact', { timeout: 120_000 }, async (compression) => {
    const topic = `batching.${compression}`
    const sink = sinkFor(topic, { compression, linger_ms: 5 })
    for (const r of records.slice(0, 15)) sink.write(r)
    await sink.close(30_000)
    expect(counters(sink).published).toBe(15)
    const messages = await consumeUntil(broker.bootstrap, topic, (got) => got.length >= 15)
    expect(messages.map((m) => m.value)).toEqual(records.slice(0, 15).map((r) => r.encode()))
    expect(messages.map((m) => m.key)).toEqual(records.slice(0, 15).map(() => 'cancer'))
  })
})
