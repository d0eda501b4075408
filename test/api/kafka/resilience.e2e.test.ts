// Stream mode on a real broker when things go wrong: an input topic idle for longer than the
// request timeout, a broker outage, a request with a huge key, and a rebalance while messages
// of a partition are running and queued on the member that loses it.
import type { EventEmitter } from 'node:events'
import { once } from 'node:events'
import { Producer, stringSerializers } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStream, type StreamScorer } from '../../../src/api/kafka/index.ts'
import { Gateway } from '../../../src/gateway.ts'
import { silentLogger } from '../../../src/types.ts'
import { configFrom } from '../../helpers.ts'
import { committedOffsets, consumeUntil, createTopic, startBroker, type Broker } from '../../output/broker.ts'
import { eventually } from '../../output/serve.ts'
import '../../starter/scripted.ts'

let broker: Broker
const open: { gateway: Gateway; scorer: StreamScorer | null }[] = []
beforeAll(async () => {
  broker = await startBroker()
})
afterAll(async () => {
  for (const { gateway, scorer } of open) {
    await scorer?.close(100)
    await gateway.close()
  }
  await broker?.destroy()
})

/** One in-process member of `group` reading `topic`, its model scripted. */
async function member(topic: string, group: string, model: string, extra = '', maxInFlight = 4): Promise<{ gateway: Gateway; scorer: StreamScorer }> {
  const gateway = new Gateway(
    configFrom(`models:
  m: { kind: scripted, ${model} }
ensembles:
  e: { strategy: deadline-fallback, models: [m], budget_ms: { default: 20000, max: 30000 } }
output:
  kafka: { brokers: ["${broker.bootstrap}"], request_timeout_ms: 2000, retry_backoff_ms: 200, ${extra} stream: { input_topic: ${topic}, group_id: ${group}, max_in_flight_per_partition: ${maxInFlight} } }
`),
  )
  await gateway.load()
  const scorer = (await startStream(gateway, silentLogger, true))!
  open.push({ gateway, scorer })
  return { gateway, scorer }
}

async function produce(messages: { topic: string; partition?: number; key?: string; value: string }[]): Promise<void> {
  const producer = new Producer({ clientId: 'specserve-test-requests', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers })
  try {
    await producer.send({ messages })
  } finally {
    await producer.close()
  }
}

const request = (id: string): string => JSON.stringify({ id, ensemble: 'e', inputs: { x: [[0.5, 0.5]] } })
const answered = (topic: string, ids: readonly string[]) =>
  consumeUntil(broker.bootstrap, `${topic}.results`, (got) => ids.every((id) => got.some((m) => JSON.parse(m.value).id === id)), 60_000)
/** The member's next consumer lag measurement (every 5 s): time passing, as the member sees it. */
const lagMeasured = (scorer: StreamScorer): Promise<unknown> => once((scorer as unknown as { intake: { consumer: EventEmitter } }).intake.consumer, 'consumer:lag')
const gauge = (scorer: StreamScorer, name: string): number | undefined => {
  let value: number | undefined
  scorer.collect({ counter() {}, gauge: (n: string, _help: string, rows: [unknown, number][]) => void (n === name && (value = rows[0]?.[1])) } as never)
  return value
}

describe('stream mode, resilience', () => {
  it('keeps consuming after the input topic is idle longer than the request timeout, and consumes again after a broker outage', { timeout: 180_000 }, async () => {
    const topic = 'resilience.idle'
    await createTopic(broker.bootstrap, topic, 1)
    const { scorer } = await member(topic, 'resilience-idle', 'label: 1')
    // Three lag measurements: 10–15 s with nothing to read, the request timeout being 2 s.
    for (let i = 0; i < 3; i++) await lagMeasured(scorer)
    await produce([{ topic, key: 'k', value: request('after-idle') }])
    await answered(topic, ['after-idle'])
    expect(scorer.status()).toMatchObject({ state: 'consuming', consumer_restarts: 0 })

    await broker.stop()
    const down = await eventually('the consumer noticed', async () => scorer.status(), (s) => s.state === 'reconnecting')
    expect(down.last_error).toEqual(expect.any(String))
    expect(gauge(scorer, 'specserve_stream_consuming')).toBe(0)
    await broker.start()
    await produce([{ topic, key: 'k', value: request('after-outage') }])
    await answered(topic, ['after-outage'])
    expect(scorer.status()).toMatchObject({ state: 'consuming', answered: 2 })
    expect(scorer.status().consumer_restarts).toBeGreaterThanOrEqual(1)
    expect(gauge(scorer, 'specserve_stream_consuming')).toBe(1)
    await eventually('both committed', () => committedOffsets(broker.bootstrap, 'resilience-idle', topic, 1), ([offset]) => offset === 2n)
  })

  it('dead-letters a request with a huge key instead of answering under it, and goes on with its partition', { timeout: 120_000 }, async () => {
    const topic = 'resilience.bigkey'
    await createTopic(broker.bootstrap, topic, 1)
    const key = 'K'.repeat(300_000)
    // An explicit partition: the test's own producer would hash the key with the library's quadratic murmur2.
    await produce([
      { topic, partition: 0, key, value: request('big-key') },
      { topic, partition: 0, key: 'small', value: request('after') },
    ])
    const { scorer } = await member(topic, 'resilience-bigkey', 'label: 1')
    const [letter] = await consumeUntil(broker.bootstrap, `${topic}.dlq`, (got) => got.length >= 1)
    const dead = JSON.parse(letter!.value) as { error: { code: string; message: string }; source: { key: string; key_bytes: number } }
    expect(letter!.key ?? '').toBe('')
    expect(dead.error.code).toBe('PAYLOAD_TOO_LARGE')
    expect(dead.error.message).toMatch(/the message key is 300000 bytes/)
    expect(dead.source).toMatchObject({ key: 'K'.repeat(256), key_bytes: 300_000 })
    const answers = await answered(topic, ['after'])
    expect(answers.map((m) => JSON.parse(m.value).id)).toEqual(['after'])
    expect(scorer.status()).toMatchObject({ answered: 1, dead_lettered: 1 })
    await eventually('both committed', () => committedOffsets(broker.bootstrap, 'resilience-bigkey', topic, 1), ([offset]) => offset === 2n)
  })

  it('after a rebalance, the old owner starts none of the lost partition’s queued messages and reports lag only for what it owns', { timeout: 180_000 }, async () => {
    const topic = 'resilience.rebalance'
    await createTopic(broker.bootstrap, topic, 2)
    // A's first four predicts (two per partition, its maximum) outlast the rebalance; then one more of each partition waits in A's queue.
    const a = await member(topic, 'resilience-rb', 'delays_ms: [8000, 8000, 8000, 8000, 0]', '', 2)
    const scoredBy = { a: [] as string[], b: [] as string[] }
    a.gateway.hooks.onResult = (r) => void scoredBy.a.push(r.id)
    const running = [0, 1].flatMap((p) => [`p${p}-first`, `p${p}-second`])
    const queued = [0, 1].map((p) => `p${p}-queued`)
    const toPartition = (id: string) => ({ topic, partition: Number(id[1]), key: id, value: request(id) })
    await produce(running.map(toPartition))
    await eventually('A running both partitions', async () => a.scorer.status(), (s) => s.in_flight === 4)
    await produce(queued.map(toPartition))
    await eventually('A queued one of each', async () => a.scorer.status(), (s) => s.consumed === 6)

    const b = await member(topic, 'resilience-rb', 'label: 1')
    b.gateway.hooks.onResult = (r) => void scoredBy.b.push(r.id)
    const owned = async (s: StreamScorer) => (s.status().assignments as { partitions: number[] }[])[0]?.partitions ?? []
    await eventually('partitions split', async () => [await owned(a.scorer), await owned(b.scorer)], ([x, y]) => x!.length === 1 && y!.length === 1)
    const [lost] = await owned(b.scorer)
    await answered(topic, [...running, ...queued])

    // Only what A had running when it lost the partition may be scored twice; its queue went to B.
    expect(scoredBy.a.filter((id) => id.startsWith(`p${lost}-`)).toSorted()).toEqual([`p${lost}-first`, `p${lost}-second`])
    expect(scoredBy.b).toContain(`p${lost}-queued`)
    expect(a.scorer.status().dropped_revoked).toBe(1)
    // Two measurements after A finished the lost partition's predict: its lag lists only what A owns.
    for (let i = 0; i < 2; i++) await lagMeasured(a.scorer)
    expect(Object.keys(a.scorer.status().lag as object)).toEqual(await owned(a.scorer).then((p) => p.map(String)))
  })
})
