// Stream mode on a real broker when things go wrong: an input topic idle for longer than the
// request timeout, a broker outage, a request with a huge key, a rebalance while messages
// of a partition are running and queued on the member that loses it, a partition given back
// to a member whose intake stayed paused across the loss, and one given back while a fetch of
// it was on its way. Timeouts are short here
// (request_timeout_ms 500) so that what takes minutes at the defaults takes seconds.
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startStream, type StreamScorer } from '../../../src/api/kafka/index.ts'
import { Gateway } from '../../../src/gateway.ts'
import { silentLogger } from '../../../src/types.ts'
import { configFrom } from '../../helpers.ts'
import { committedOffsets, consumeUntil, createTopic, startBroker, type Broker } from '../../output/broker.ts'
import { eventually } from '../../output/serve.ts'
import '../../starter/scripted.ts'
import { closeGate, openGate } from './gated.ts'

/** The request timeout of the members; the library's fetch wait (5000 ms) would be over it. */
const REQUEST_TIMEOUT_MS = 500

let broker: Broker
const open: { gateway: Gateway; scorer: StreamScorer | null }[] = []
/** The member of the idle test, started first: the topic stays idle while the other tests run (they are time it waits anyway). */
let idle: { topic: string; scorer: StreamScorer; heartbeats: () => number }
beforeAll(async () => {
  broker = await startBroker()
  const topic = 'resilience.idle'
  await createTopic(broker.bootstrap, topic, 1)
  const { scorer } = await member(topic, 'resilience-idle', '{ kind: scripted, label: 1 }')
  let heartbeats = 0
  consumerOf(scorer).on('consumer:heartbeat:end', () => heartbeats++)
  idle = { topic, scorer, heartbeats: () => heartbeats }
})
afterAll(async () => {
  openGate()
  for (const { gateway, scorer } of open) {
    await scorer?.close(100)
    await gateway.close()
  }
  await broker?.destroy()
  vi.restoreAllMocks()
})

/** One in-process member of `group` reading `topic`, its model `model`. */
async function member(topic: string, group: string, model: string, maxInFlight = 4): Promise<{ gateway: Gateway; scorer: StreamScorer }> {
  const gateway = new Gateway(
    configFrom(`models:
  m: ${model}
ensembles:
  e: { strategy: deadline-fallback, models: [m], budget_ms: { default: 20000, max: 30000 } }
output:
  kafka: { brokers: ["${broker.bootstrap}"], request_timeout_ms: ${REQUEST_TIMEOUT_MS}, retry_backoff_ms: 100, stream: { input_topic: ${topic}, group_id: ${group}, max_in_flight_per_partition: ${maxInFlight} } }
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
const consumerOf = (scorer: StreamScorer): Consumer<string, string, string, string> => (scorer as unknown as { intake: { consumer: Consumer<string, string, string, string> } }).intake.consumer
const gauge = (scorer: StreamScorer, name: string): number | undefined => {
  let value: number | undefined
  scorer.collect({ counter() {}, gauge: (n: string, _help: string, rows: [unknown, number][]) => void (n === name && (value = rows[0]?.[1])) } as never)
  return value
}

/** The partitions `scorer` owns now. */
const owned = async (scorer: StreamScorer): Promise<number[]> => (scorer.status().assignments as { partitions: number[] }[])[0]?.partitions ?? []

/**
 * B joins `group` and takes one of A's two partitions without reading or committing anything,
 * then leaves, and A gets it back. Resolves with the partition A kept.
 */
async function passThroughB(topic: string, group: string, a: StreamScorer): Promise<number> {
  const b = new Consumer({ clientId: 'specserve-test-b', bootstrapBrokers: [broker.bootstrap], groupId: group, deserializers: stringDeserializers, autocommit: false })
  let kept: number | undefined
  try {
    const held = await b.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false })
    held.pause()
    kept = (await eventually('A lost a partition', () => owned(a), (p) => p.length === 1))[0]
    await held.close()
  } finally {
    await b.close(true)
  }
  await eventually('A got it back', () => owned(a), (p) => p.length === 2)
  return kept!
}

/** Ids `p{partition}-{n}` for n in [from, to), on both partitions. */
const ids = (from: number, to: number): string[] => [0, 1].flatMap((p) => Array.from({ length: to - from }, (_, i) => `p${p}-${from + i}`))

describe('stream mode, resilience', () => {
  it('dead-letters a request with a huge key instead of answering under it, and goes on with its partition', { timeout: 60_000 }, async () => {
    const topic = 'resilience.bigkey'
    await createTopic(broker.bootstrap, topic, 1)
    const key = 'K'.repeat(300_000)
    // An explicit partition: the test's own producer would hash the key with the library's quadratic murmur2.
    await produce([
      { topic, partition: 0, key, value: request('big-key') },
      { topic, partition: 0, key: 'small', value: request('after') },
    ])
    const { scorer } = await member(topic, 'resilience-bigkey', '{ kind: scripted, label: 1 }')
    const [letter] = await consumeUntil(broker.bootstrap, `${topic}.dlq`, (got) => got.length >= 1)
    const dead = JSON.parse(letter!.value) as { error: { code: string; message: string }; source: { key: string; key_bytes: number } }
    expect(letter!.key ?? '').toBe('')
    expect(dead.error.code).toBe('PAYLOAD_TOO_LARGE')
    expect(dead.error.message).toMatch(/the message key is 300000 bytes/)
    expect(dead.source).toMatchObject({ key: 'K'.repeat(256), key_bytes: 300_000 })
    const answers = await answered(topic, ['after'])
    expect(answers.map((m) => JSON.parse(m.value).id)).toEqual(['after'])
    expect(scorer.status()).toMatchObject({ answered: 1, dead_lettered: 1 })
    await eventually('both committed', () => committedOffsets(broker.bootstrap, 'resilience-bigkey', topic, 1).then((o) => o.map(String)), ([offset]) => offset === '2')
  })

  it('after a rebalance, the old owner starts none of the lost partition’s queued messages and reports lag only for what it owns', { timeout: 60_000 }, async () => {
    const topic = 'resilience.rebalance'
    await createTopic(broker.bootstrap, topic, 2)
    // A's predicts wait at the gate until the rebalance is done: two per partition (its maximum) run, one more of each waits in A's queue.
    const a = await member(topic, 'resilience-rb', '{ kind: gated }', 2)
    const scoredBy = { a: [] as string[], b: [] as string[] }
    a.gateway.hooks.onResult = (r) => void scoredBy.a.push(r.id)
    const running = [0, 1].flatMap((p) => [`p${p}-first`, `p${p}-second`])
    const queued = [0, 1].map((p) => `p${p}-queued`)
    const toPartition = (id: string) => ({ topic, partition: Number(id[1]), key: id, value: request(id) })
    await produce(running.map(toPartition))
    await eventually('A running both partitions', async () => a.scorer.status(), (s) => s.in_flight === 4)
    await produce(queued.map(toPartition))
    await eventually('A queued one of each', async () => a.scorer.status(), (s) => s.consumed === 6)

    const b = await member(topic, 'resilience-rb', '{ kind: scripted, label: 1 }')
    b.gateway.hooks.onResult = (r) => void scoredBy.b.push(r.id)
    await eventually('partitions split', async () => [await owned(a.scorer), await owned(b.scorer)], ([x, y]) => x!.length === 1 && y!.length === 1)
    const [lost] = await owned(b.scorer)
    openGate()
    await answered(topic, [...running, ...queued])
    await eventually('A done', async () => a.scorer.status(), (s) => s.in_flight === 0)

    // Only what A had running when it lost the partition may be scored twice; its queue went to B.
    expect(scoredBy.a.filter((id) => id.startsWith(`p${lost}-`)).toSorted()).toEqual([`p${lost}-first`, `p${lost}-second`])
    expect(scoredBy.b).toContain(`p${lost}-queued`)
    expect(a.scorer.status().dropped_revoked).toBe(1)
    // A lag measured after A finished the lost partition's predicts lists only what A owns.
    await consumerOf(a.scorer).getLag({ topics: [topic] })
    expect(Object.keys(a.scorer.status().lag as object)).toEqual(await owned(a.scorer).then((p) => p.map(String)))
  })
  it('answers every message of a partition lost and given back, with nothing committed, whether its intake stayed paused or not', { timeout: 90_000 }, async () => {
    const topic = 'resilience.regain'
    const group = 'resilience-regain'
    await createTopic(broker.bootstrap, topic, 2)
    closeGate()
    // Two predicts per partition at a time, held at the gate, and one more of each queued.
    const a = await member(topic, group, '{ kind: gated }', 2)
    const toPartition = (id: string) => ({ topic, partition: Number(id[1]), key: id, value: request(id) })
    await produce(ids(0, 3).map(toPartition))
    await eventually('A running two and queuing one per partition', async () => a.scorer.status(), (s) => s.in_flight === 4 && s.consumed === 6)
    // A second queued message of one partition pauses intake; the rest stays fetched in the client.
    await produce(ids(3, 9).map(toPartition))
    await eventually('A paused', async () => a.scorer.status(), (s) => s.paused === true)
    // Whichever partition A lost, its queue was dropped; if it lost the one that paused intake,
    // intake resumed meanwhile, otherwise it stayed paused across the loss and the return.
    await passThroughB(topic, group, a.scorer)
    openGate()
    // Before, the client resumed the partition given back where it had stopped fetching, and the
    // messages dropped from A's queue at the loss were never read again.
    await answered(topic, ids(0, 9))
  })

  it('answers every message of a partition lost and given back while a fetch of it was on its way, whose answer is read only after the return', { timeout: 120_000 }, async () => {
    const topic = 'resilience.late-fetch'
    const group = 'resilience-late-fetch'
    await createTopic(broker.bootstrap, topic, 2)
    closeGate()
    // The client's fetches, beneath the member's own handling of them: the test holds back the
    // answer of one, as if it came late.
    type Answer = { responses: { partitions: { partitionIndex: number; records?: unknown[] | null }[] }[] }
    type Callback = (error: Error | null, answer?: Answer) => void
    const fetch = Consumer.prototype.fetch as unknown as (this: Consumer, options: unknown, callback?: Callback) => unknown
    let hold: { consumer: unknown; records: boolean; held: PromiseWithResolvers<{ answer?: Answer; release: () => void }> } | null = null
    vi.spyOn(Consumer.prototype, 'fetch').mockImplementation(function (this: Consumer, options: unknown, callback?: Callback) {
      if (callback === undefined || hold?.consumer !== this) return fetch.call(this, options, callback)
      return fetch.call(this, options, (error, answer) => {
        const carried = answer?.responses.some((t) => t.partitions.some((p) => (p.records?.length ?? 0) > 0)) ?? false
        if (hold?.consumer !== this || (hold.records && !carried)) return callback(error, answer)
        hold.held.resolve({ answer, release: () => callback(error, answer) })
        hold = null
      })
    } as never)
    const holdNext = (consumer: unknown, records: boolean) => (hold = { consumer, records, held: Promise.withResolvers() }).held.promise

    const a = await member(topic, group, '{ kind: gated }', 2)
    const toPartition = (id: string) => ({ topic, partition: Number(id[1]), key: id, value: request(id) })
    await produce(ids(0, 3).map(toPartition))
    await eventually('A running two and queuing one per partition', async () => a.scorer.status(), (s) => s.in_flight === 4 && s.consumed === 6)
    // The next answer (an idle long poll) is held while two more messages per partition are
    // produced: the fetch sent once it is let go finds both partitions' messages, and its answer is held.
    let release: (() => void) | undefined
    try {
      const idleAnswer = await holdNext(consumerOf(a.scorer), false)
      await produce(ids(3, 5).map(toPartition))
      const late = holdNext(consumerOf(a.scorer), true)
      idleAnswer.release()
      const held = await late
      release = held.release
      expect(held.answer!.responses.flatMap((t) => t.partitions.filter((p) => (p.records?.length ?? 0) > 0).map((p) => p.partitionIndex)).toSorted()).toEqual([0, 1])
      // A loses a partition (and drops its queued message) and gets it back: it reads it again
      // from the earliest offset (nothing was committed).
      const lost = 1 - (await passThroughB(topic, group, a.scorer))
      const positions = (a.scorer as unknown as { intake: { intake: { stream: { offsetsToFetch: Map<string, bigint> } } } }).intake.intake.stream.offsetsToFetch
      await eventually('A reads it again from the earliest offset', async () => positions.get(`${topic}:${lost}`), (offset) => offset === 0n)
      // Only now does the answer of the fetch sent before the loss arrive.
      const deliver = release
      release = undefined
      deliver()
    } finally {
      hold = null
      release?.()
    }
    openGate()
    // Before, that answer passed for current: the client resumed the partition after its messages,
    // and the one dropped from A's queue at the loss was never read again.
    await answered(topic, ids(0, 5))
    expect(a.scorer.status().skipped_not_owned).toBe(2)
  })

  it('keeps consuming after the input topic is idle longer than the request timeout, and consumes again after a broker outage', { timeout: 120_000 }, async () => {
    const { topic, scorer, heartbeats } = idle
    // At the library's fetch wait, the client would give up on the stream after 4 fetches timed out, 1 s apart: 6 s idle is past that.
    await eventually('6 s idle', async () => heartbeats(), (n) => n >= 6)
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
    await eventually('both committed', () => committedOffsets(broker.bootstrap, 'resilience-idle', topic, 1).then((o) => o.map(String)), ([offset]) => offset === '2')
  })
})
