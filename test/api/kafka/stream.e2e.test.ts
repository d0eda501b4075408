// Stream mode on a real broker: two gateway instances in one consumer group share the
// input topic's partitions, every request gets exactly its answer on the output topic,
// offsets are committed, and poison messages go to the dead-letter topic without
// stalling their partition.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Producer, stringSerializers } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { samples } from '../../helpers.ts'
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
  answered: number
  peak_in_flight_per_partition: number
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
    const producer = new Producer({ clientId: 'specserve-test-requests', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers })
    const N = 60
    const poison = [
      { key: 'k0', value: '{"ensemble": "cancer", "inputs": ' }, // truncated JSON
      { key: 'k1', value: JSON.stringify({ ensemble: 'nope', inputs: { input: [rows[0]] } }) },
      { key: 'k2', value: JSON.stringify({ ensemble: 'cancer', inputs: { input: [[1, 2, 3]] } }) },
    ]
    try {
      // Poison first on keys k0..k2, so the good messages behind it on the same partitions must still flow.
      await producer.send({ messages: poison.map((p) => ({ topic: INPUT, ...p })) })
      await producer.send({
        messages: Array.from({ length: N }, (_, i) => ({
          topic: INPUT,
          key: `k${i % 12}`,
          value: JSON.stringify({ id: `s-${i}`, ensemble: 'cancer', inputs: { input: [rows[i % rows.length]] } }),
        })),
      })
    } finally {
      await producer.close()
    }

    const results = await consumeUntil(broker.bootstrap, `${INPUT}.results`, (got) => new Set(got.map((m) => JSON.parse(m.value).id)).size >= N)
    const byId = new Map(results.map((m) => [JSON.parse(m.value).id as string, JSON.parse(m.value) as { outputs: { label: number[] }; models: { name: string }[] }]))
    for (let i = 0; i < N; i++) {
      const result = byId.get(`s-${i}`)
      expect(result, `s-${i}`).toBeDefined()
      expect(result!.outputs.label).toEqual([expected.cancer_logreg![i % rows.length]])
    }
    expect(results.every((m) => m.key === `k${Number(JSON.parse(m.value).id.slice(2)) % 12}`)).toBe(true)

    const dead = await consumeUntil(broker.bootstrap, `${INPUT}.dlq`, (got) => got.length >= poison.length)
    const letters = dead.map((m) => JSON.parse(m.value) as { error: { code: string }; source: { key: string; topic: string }; value: string })
    expect(letters.map((l) => [l.source.key, l.error.code]).toSorted()).toEqual([
      ['k0', 'BAD_REQUEST'],
      ['k1', 'UNKNOWN_ENSEMBLE'],
      ['k2', 'BAD_INPUT'],
    ])
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
      (sum) => sum === BigInt(N + poison.length),
    )
    expect(total).toBe(BigInt(N + poison.length))
  })
})
