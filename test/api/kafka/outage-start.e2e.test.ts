// Stream mode and Kafka failures the gateway must live through, on a real broker: the consumer
// itself emitting 'error' (what the library does when a rejoin asked for by a rebalance fails,
// the broker gone meanwhile), and a start while the brokers are unreachable.
import { Producer, stringSerializers, type Consumer } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStream, type StreamScorer } from '../../../src/api/kafka/index.ts'
import { Gateway } from '../../../src/gateway.ts'
import { silentLogger } from '../../../src/types.ts'
import { configFrom, samples } from '../../helpers.ts'
import { consumeUntil, createTopic, startBroker, type Broker } from '../../output/broker.ts'
import { eventually, predict, serve, writeConfig } from '../../output/serve.ts'
import { tempDir } from '../../temp-dirs.ts'
import '../../starter/scripted.ts'

let broker: Broker
beforeAll(async () => {
  broker = await startBroker()
}, 120_000)
afterAll(async () => {
  await broker?.destroy()
})

async function produce(topic: string, value: string): Promise<void> {
  const producer = new Producer({ clientId: 'specserve-test-requests', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers, autocreateTopics: true })
  try {
    await producer.send({ messages: [{ topic, key: 'k', value }] })
  } finally {
    await producer.close()
  }
}

const answered = (topic: string, id: string) => consumeUntil(broker.bootstrap, `${topic}.results`, (got) => got.some((m) => (JSON.parse(m.value) as { id?: string }).id === id), 60_000)
const consumerOf = (scorer: StreamScorer): Consumer<string, string, string, string> => (scorer as unknown as { intake: { consumer: Consumer<string, string, string, string> } }).intake.consumer

describe('stream mode when Kafka fails', () => {
  it("survives an 'error' event of its consumer (a failed rejoin), reports it, and consumes again", { timeout: 90_000 }, async () => {
    const topic = 'outage.consumer-error'
    await createTopic(broker.bootstrap, topic, 1)
    const gateway = new Gateway(
      configFrom(`models:
  m: { kind: scripted, label: 1 }
ensembles:
  e: { strategy: deadline-fallback, models: [m], budget_ms: { default: 20000, max: 30000 } }
output:
  kafka: { brokers: ["${broker.bootstrap}"], request_timeout_ms: 500, retry_backoff_ms: 100, stream: { input_topic: ${topic}, group_id: outage-consumer-error } }
`),
    )
    await gateway.load()
    const scorer = (await startStream(gateway, silentLogger, true))!
    try {
      const request = (id: string): string => JSON.stringify({ id, ensemble: 'e', inputs: { x: [[0.5, 0.5]] } })
      await produce(topic, request('before'))
      await answered(topic, 'before')

      // The library's own Consumer object, emitting what it emits when a rejoin fails: unheard, Node would throw it.
      consumerOf(scorer).emit('error', new Error('joinGroup failed 4 times.'))
      expect(scorer.status()).toMatchObject({ consumer_errors: 1, last_error: 'joinGroup failed 4 times' })

      await eventually('consuming again', async () => scorer.status(), (s) => s.state === 'consuming' && (s.consumer_restarts as number) >= 1)
      await produce(topic, request('after'))
      await answered(topic, 'after')
      expect(scorer.status()).toMatchObject({ state: 'consuming', answered: 2 })
    } finally {
      await scorer.close(100)
      await gateway.close()
    }
  })

  it('serves while the brokers are unreachable at start, then consumes once the broker is up', { timeout: 180_000 }, async () => {
    const topic = 'outage.start'
    await createTopic(broker.bootstrap, topic, 1)
    await broker.stop()
    const config = await writeConfig(tempDir('specserve-stream-start-'), broker.bootstrap, `stream: { enabled: true, input_topic: ${topic}, group_id: outage-start }`)
    const served = await serve(config)
    try {
      expect((await predict(served.url, 'rest-1', 0)).status).toBe(200)
      const streamOf = (r: Awaited<ReturnType<typeof served.readyz>>): { state: string; last_error: string | null } => (r.body.output as unknown as { stream: { state: string; last_error: string | null } }).stream
      const ready = await served.readyz()
      expect(ready.status).toBe(200)
      // Ready before the first consume() has given up (the start waits at most 5 s for it).
      expect(['starting', 'reconnecting']).toContain(streamOf(ready).state)
      const failed = await eventually('stream mode reconnecting', served.readyz, (r) => streamOf(r).state === 'reconnecting', 90_000)
      expect(streamOf(failed).last_error).toEqual(expect.any(String))

      await broker.start()
      await eventually('stream mode consuming', served.readyz, (r) => streamOf(r).state === 'consuming', 90_000)
      await produce(topic, JSON.stringify({ id: 'late', ensemble: 'cancer', inputs: { input: [samples('cancer').rows[0]] } }))
      await answered(topic, 'late')
    } finally {
      expect(await served.proc.stop('SIGTERM')).toBe(0)
    }
  })
})
