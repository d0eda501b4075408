// Stream mode on a real broker: two gateway instances in one consumer group share the
// input topic's partitions, every request gets exactly its answer on the output topic,
// offsets are committed, and poison messages go to the dead-letter topic without
// stalling their partition.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Producer, stringSerializers } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { samples } from '../../helpers.ts'
import { startFaultServer, WINE_IO } from '../../executors/remote/fault-server.ts'
import { committedOffsets, consumeUntil, createTopic, startBroker, type Broker } from '../../output/broker.ts'
import { eventually, serve, writeConfig, type Served } from '../../output/serve.ts'

const INPUT = 'specserve.requests'
const PARTITIONS = 4
const GROUP = 'specserve-stream-test'

let broker: Broker
let dir: string
const instances: Served[] = []

interface StreamStatus {
  assignments: { topic: string; partitions: number[] }[]
  consumed: number
  answered: number
  dead_lettered: number
  produce_requests: number
  peak_in_flight_per_partition: number
  lag: Record<string, number>
}

/** The stream-mode series of an instance's /metrics (Prometheus text): name{labels} → value. */
async function streamMetrics(instance: Served): Promise<Map<string, number>> {
  const text = await (await fetch(`${instance.url}/metrics`)).text()
  return new Map([...text.matchAll(/^(specserve_stream_\w+(?:\{[^}]*\})?) (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]))
}

/** A real `specserve serve --stream` process, one member of the group. */
async function startInstance(name: string): Promise<Served> {
  const config = await writeConfig(join(dir, name), broker.bootstrap, `stream: { input_topic: ${INPUT}, group_id: ${GROUP}, max_in_flight_per_partition: 4 }`)
  const instance = await serve(config, ['--stream'])
  instances.push(instance)
  return instance
}

const streamStatus = async (instance: Served): Promise<StreamStatus> => ((await instance.readyz()).body.output as unknown as { stream: StreamStatus }).stream

beforeAll(async () => {
  broker = await startBroker()
  dir = await mkdtemp(join(tmpdir(), 'specserve-stream-'))
  await createTopic(broker.bootstrap, INPUT, PARTITIONS)
})

afterAll(async () => {
  for (const instance of instances) await instance.proc.stop('SIGTERM')
  await broker?.destroy()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('stream mode', () => {
  it('scores every request once, dead-letters poison without stalling, commits, and splits partitions between instances', { timeout: 180_000 }, async () => {
    const a = await startInstance('stream-a')
    const b = await startInstance('stream-b')
    const assigned = async (instance: Served): Promise<number[]> => ((await streamStatus(instance)).assignments[0]?.partitions ?? []).toSorted((x, y) => x - y)
    // Both members joined and the group rebalanced: each owns part of the partitions, together all of them.
    const [x, y] = await eventually('partitions split', async () => [await assigned(a), await assigned(b)], ([x, y]) => x!.length > 0 && y!.length > 0 && x!.length + y!.length === PARTITIONS)
    expect([...x!, ...y!].toSorted()).toEqual([0, 1, 2, 3])

    const rows = samples('cancer').rows
    const expected = samples('cancer').expected
    // Keys as text, or as bytes: a binary key (not UTF-8) must come back on its answer byte for byte.
    const keyBytes = (key?: string | Buffer): Buffer | undefined => (typeof key === 'string' ? Buffer.from(key) : key)
    const producer = new Producer({ clientId: 'specserve-test-requests', bootstrapBrokers: [broker.bootstrap], serializers: { ...stringSerializers, key: keyBytes } })
    const binaryKey = Buffer.from([0x00, 0xff, 0x10, 0x80, 0xfe])
    const binary = [
      { key: binaryKey, value: JSON.stringify({ id: 'bin', ensemble: 'cancer', inputs: { input: [rows[0]] } }) },
      { key: binaryKey, value: 'not JSON' },
    ]
    const N = 60
    const poison = [
      { key: 'k0', value: '{"ensemble": "cancer", "inputs": ' }, // truncated JSON
      { key: 'k1', value: JSON.stringify({ ensemble: 'nope', inputs: { input: [rows[0]] } }) },
      { key: 'k2', value: JSON.stringify({ ensemble: 'cancer', inputs: { input: [[1, 2, 3]] } }) },
      { key: 'k3', value: JSON.stringify({ id: 'i'.repeat(2000), ensemble: 'cancer', inputs: { input: [rows[0]] } }) }, // id over 1 KiB
    ]
    try {
      // Poison first on keys k0..k3, so the good messages behind it on the same partitions must still flow.
      await producer.send({ messages: poison.map((p) => ({ topic: INPUT, ...p })) })
      await producer.send({
        messages: Array.from({ length: N }, (_, i) => ({
          topic: INPUT,
          key: `k${i % 12}`,
          value: JSON.stringify({ id: `s-${i}`, ensemble: 'cancer', inputs: { input: [rows[i % rows.length]] } }),
        })),
      })
      await producer.send({ messages: binary.map((m) => ({ topic: INPUT, ...m })) })
    } finally {
      await producer.close()
    }

    const results = await consumeUntil(broker.bootstrap, `${INPUT}.results`, (got) => new Set(got.map((m) => JSON.parse(m.value).id)).size >= N + 1, undefined, undefined, keyBytes)
    const byId = new Map(results.map((m) => [JSON.parse(m.value).id as string, JSON.parse(m.value) as { outputs: { label: number[] }; models: { name: string }[] }]))
    for (let i = 0; i < N; i++) {
      const result = byId.get(`s-${i}`)
      expect(result, `s-${i}`).toBeDefined()
      expect(result!.outputs.label).toEqual([expected.cancer_logreg![i % rows.length]])
    }
    expect(byId.get('bin')!.outputs.label).toEqual([expected.cancer_logreg![0]])
    const keyOf = (id: string): Buffer => (id === 'bin' ? binaryKey : Buffer.from(`k${Number(id.slice(2)) % 12}`))
    expect(results.every((m) => keyOf(JSON.parse(m.value).id).equals(m.key!))).toBe(true)

    const dead = await consumeUntil(broker.bootstrap, `${INPUT}.dlq`, (got) => got.length >= poison.length + 1, undefined, undefined, keyBytes)
    const letters = dead.map((m) => JSON.parse(m.value) as { error: { code: string }; source: { key: string | null; key_base64?: string; topic: string }; value: string })
    expect(letters.map((l) => [l.source.key ?? l.source.key_base64, l.error.code]).toSorted()).toEqual([
      [binaryKey.toString('base64'), 'BAD_REQUEST'],
      ['k0', 'BAD_REQUEST'],
      ['k1', 'UNKNOWN_ENSEMBLE'],
      ['k2', 'BAD_INPUT'],
      ['k3', 'BAD_REQUEST'],
    ])
    expect(dead.find((m) => JSON.parse(m.value).source.key === null)!.key).toEqual(binaryKey)
    expect(letters.find((l) => l.source.key === 'k0')!.value).toBe(poison[0]!.value)

    // Both instances did part of the work, and every offset (good and poison) is committed.
    const statuses = await Promise.all(instances.map(streamStatus))
    const answered = statuses.map((s) => s.answered)
    expect(answered.every((n) => n > 0)).toBe(true)
    expect(answered.reduce((x, y) => x + y)).toBeGreaterThanOrEqual(N)
    // Backpressure: never more than max_in_flight_per_partition predicts running for one partition.
    for (const status of statuses) expect(status.peak_in_flight_per_partition).toBeLessThanOrEqual(4)
    const total = await eventually(
      'offsets committed',
      async () => (await committedOffsets(broker.bootstrap, GROUP, INPUT, PARTITIONS)).reduce((x, y) => x + (y > 0n ? y : 0n), 0n),
      (sum) => sum === BigInt(N + poison.length + binary.length),
    )
    expect(total).toBe(BigInt(N + poison.length + binary.length))

    // /metrics carries the same counts as /readyz, and the lag of each owned partition falls to 0 once all is committed.
    for (const instance of instances) {
      const owned = await assigned(instance)
      const metrics = await eventually('lag measured at 0', () => streamMetrics(instance), (m) =>
        owned.every((p) => m.get(`specserve_stream_consumer_lag{topic="${INPUT}",partition="${p}"}`) === 0),
      )
      const status = await streamStatus(instance)
      expect(metrics.get('specserve_stream_consumed_messages_total')).toBe(status.consumed)
      expect(metrics.get('specserve_stream_answered_messages_total')).toBe(status.answered)
      expect(metrics.get('specserve_stream_dead_lettered_messages_total')).toBe(status.dead_lettered)
      expect(metrics.get('specserve_stream_in_flight')).toBe(0)
      expect(Object.keys(status.lag).map(Number).toSorted((x, y) => x - y)).toEqual(owned)
    }
    // Answers decided together share produce requests: fewer requests than answers and dead letters.
    const sent = statuses.reduce((n, s) => n + s.answered + s.dead_lettered, 0)
    const requests = (await Promise.all(instances.map(streamStatus))).reduce((n, s) => n + s.produce_requests, 0)
    expect(requests).toBeGreaterThan(0)
    expect(requests).toBeLessThan(sent)
    const consumed = await Promise.all(instances.map(async (i) => (await streamMetrics(i)).get('specserve_stream_consumed_messages_total') ?? 0))
    expect(consumed.reduce((x, y) => x + y)).toBeGreaterThanOrEqual(N + poison.length + binary.length)
  })

  it('reports the lag of messages waiting on the input topic, down to 0 once they are scored', { timeout: 120_000 }, async () => {
    const topic = 'specserve.requests.waiting'
    const N = 50
    await createTopic(broker.bootstrap, topic, 1)
    const producer = new Producer({ clientId: 'specserve-test-waiting', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers })
    const row = samples('wine').rows[0]
    try {
      await producer.send({ messages: Array.from({ length: N }, (_, i) => ({ topic, value: JSON.stringify({ id: `w-${i}`, ensemble: 'held', inputs: { input: [row] } }) })) })
    } finally {
      await producer.close()
    }
    // The one model is an upstream that holds its answers until the test lets them go: the
    // backlog lasts as long as the test needs to see it measured (every 5 s), whatever the box's speed.
    const upstream = await startFaultServer()
    try {
      const config = join(dir, 'waiting.yaml')
      await writeFile(
        config,
        `models:
  held: { kind: oip, url: "${upstream.url}", model: held, retries: 0, ${WINE_IO} }
ensembles:
  held: { strategy: deadline-fallback, models: [held], budget_ms: { default: 600000, max: 600000 } }
output:
  kafka: { brokers: ["${broker.bootstrap}"], spool_dir: ${join(dir, 'waiting-spool')}, stream: { input_topic: ${topic}, group_id: waiting-group, max_in_flight_per_partition: 1 } }
`,
      )
      const instance = await serve(config, ['--stream'])
      instances.push(instance)
      const series = `specserve_stream_consumer_lag{topic="${topic}",partition="0"}`
      const behind = await eventually('a lag measured while behind', () => streamMetrics(instance), (m) => (m.get(series) ?? 0) > 0)
      expect(behind.get(series)).toBeLessThanOrEqual(N)
      expect(behind.get('specserve_stream_answered_messages_total') ?? 0).toBe(0)
      upstream.releaseHeld()
      await eventually('all answered', () => streamStatus(instance), (s) => s.answered === N)
      const caughtUp = await eventually('lag measured at 0', () => streamMetrics(instance), (m) => m.get(series) === 0)
      expect(caughtUp.get('specserve_stream_answered_messages_total')).toBe(N)
      expect(upstream.hits.get('held')).toBeGreaterThanOrEqual(N) // at least once: a rebalance may deliver one again
    } finally {
      await upstream.close()
    }
  })

  it('dead-letters an answer over max_record_bytes instead of stalling its partition, and drops its serving record, counted', { timeout: 120_000 }, async () => {
    const topic = 'specserve.requests.large'
    await createTopic(broker.bootstrap, topic, 1)
    const rows = samples('cancer').rows
    const many = Array.from({ length: 100 }, (_, i) => rows[i % rows.length]!)
    const producer = new Producer({ clientId: 'specserve-test-large', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers })
    try {
      await producer.send({
        messages: [
          { topic, key: 'big', value: JSON.stringify({ id: 'big', ensemble: 'cancer', inputs: { input: many } }) },
          { topic, key: 'one', value: JSON.stringify({ id: 'one', ensemble: 'cancer', inputs: { input: [rows[0]] } }) },
        ],
      })
    } finally {
      await producer.close()
    }
    // 3000 bytes: a one-row answer (~0.7 KB) fits; a 100-row one, and the 100-row request echoed in a dead letter, do not.
    const config = await writeConfig(join(dir, 'large'), broker.bootstrap, `max_record_bytes: 3000, stream: { input_topic: ${topic}, group_id: large-group }`)
    const instance = await serve(config, ['--stream'])
    instances.push(instance)
    await eventually('both messages settled', () => streamStatus(instance), (s) => s.answered === 1 && s.dead_lettered === 1)
    const answers = await consumeUntil(broker.bootstrap, `${topic}.results`, (got) => got.length >= 1)
    expect(answers.map((m) => JSON.parse(m.value).id)).toEqual(['one'])
    const [letter] = await consumeUntil(broker.bootstrap, `${topic}.dlq`, (got) => got.length >= 1)
    const dead = JSON.parse(letter!.value) as { error: { code: string; message: string }; source: { key: string }; value: string | null; value_bytes: number }
    expect(dead.error.code).toBe('RESPONSE_TOO_LARGE')
    expect(dead.error.message).toMatch(/over output\.kafka\.max_record_bytes \(3000\)/)
    expect(dead.source.key).toBe('big')
    expect(dead.value).toBeNull()
    expect(dead.value_bytes).toBeGreaterThan(3000)
    // Both offsets committed: the partition did not stall behind the large answer.
    await eventually('offsets committed', () => committedOffsets(broker.bootstrap, 'large-group', topic, 1), ([offset]) => offset === 2n)
    // The 100-row predict's serving record is over the limit too: dropped and counted, the other one published.
    const kafka = await eventually('records settled', async () => (await instance.readyz()).body.output!.kafka, (k) => k.published >= 1 && k.dropped === 1)
    expect(kafka).toMatchObject({ dropped: 1, spooled_records: 0 })
  })
})
