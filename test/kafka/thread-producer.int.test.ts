// The record sink's producer on its own thread, against a real broker: what it sends arrives
// in order with its keys and bytes, the event loop itself runs no produce request, the
// broker's refusals come back as the client's (so the sink still splits a batch refused as
// too large), a thread that dies fails what it had in hand and the next request starts a new
// one, and close() leaves no thread behind.
import { execFile } from 'node:child_process'
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errorMessage, isTooLarge } from '../../src/kafka/client.ts'
import { kafkaSettings, type KafkaSettings } from '../../src/kafka/config.ts'
import { LoopProducer, recordProducer, ThreadProducer } from '../../src/kafka/thread-producer.ts'
import { KafkaSink } from '../../src/output/kafka.ts'
import type { Logger } from '../../src/types.ts'
import { consumeUntil, createTopic, startBroker, type Broker } from '../output/broker.ts'
import { paddedRecord, startSilentBroker } from '../output/silent-broker.ts'
import { tempDir } from '../temp-dirs.ts'

let broker: Broker

beforeAll(async () => {
  broker = await startBroker()
})

afterAll(async () => {
  await broker?.destroy()
})

const settingsFor = (brokers: string[], kafka: Record<string, unknown> = {}): KafkaSettings => kafkaSettings({ kafka: { brokers, request_timeout_ms: 2000, producer_thread: true, ...kafka } }, '/tmp')!

function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = []
  const keep = (_fields: object, msg: string): void => void lines.push(msg)
  return { lines, info: keep, warn: keep, error: keep }
}

/** Produce requests the client starts on this thread (its diagnostics channel for sends). */
function sendsOnThisThread(): { count: () => number; stop: () => void } {
  let count = 0
  const name = 'tracing:plt:kafka:producer:sends:start'
  const seen = (): void => void count++
  subscribe(name, seen)
  tracingChannel('plt:kafka:producer:sends') // the channel exists whether or not a client was made here
  return { count: () => count, stop: () => unsubscribe(name, seen) }
}

describe('the producer thread', () => {
  it('sends in order with keys and exact bytes, and none of it on the event loop', async () => {
    const topic = 'specserve.thread.order'
    const producer = recordProducer(settingsFor([broker.bootstrap]), capturingLogger())
    expect(producer).toBeInstanceOf(ThreadProducer)
    const sends = sendsOnThisThread()
    const values = Array.from({ length: 300 }, (_, i) => JSON.stringify({ i, text: i % 7 ? 'plain' : 'héllo ✓ 🙂' }))
    try {
      await producer.metadata({ topics: [topic], autocreateTopics: true })
      await producer.send({ messages: values.slice(0, 150).map((value, i) => (i % 2 ? { topic, value } : { topic, key: `k${i}`, value })) })
      await producer.send({ messages: values.slice(150).map((value) => ({ topic, key: 'ensemble', value })) })
      expect(sends.count()).toBe(0)
    } finally {
      sends.stop()
      await producer.close()
    }
    const got = await consumeUntil(broker.bootstrap, topic, (m) => m.length >= 300)
    expect(got.map((m) => m.value)).toEqual(values)
    expect(got.slice(0, 4).map((m) => m.key ?? null)).toEqual(['k0', null, 'k2', null])
    expect(got.slice(150).every((m) => m.key === 'ensemble')).toBe(true)
  })

  it('is the client on the event loop by default (the check above can see a send)', async () => {
    const topic = 'specserve.thread.off'
    const producer = recordProducer(kafkaSettings({ kafka: { brokers: [broker.bootstrap] } }, '/tmp')!, capturingLogger())
    expect(producer).toBeInstanceOf(LoopProducer)
    const sends = sendsOnThisThread()
    try {
      await producer.send({ messages: [{ topic, value: 'on the loop' }] })
      expect(sends.count()).toBe(1)
    } finally {
      sends.stop()
      await producer.close()
    }
  })

  it("gives the broker's refusal of a message over the topic's limit as the client does", async () => {
    const topic = 'specserve.thread.limit'
    await createTopic(broker.bootstrap, topic, 1, { 'max.message.bytes': '4096' })
    const producer = recordProducer(settingsFor([broker.bootstrap]), capturingLogger())
    try {
      const err = await producer.send({ messages: [{ topic, value: 'x'.repeat(20_000) }] }).then(() => null, (e: unknown) => e)
      expect(isTooLarge(err)).toBe(true)
      expect(errorMessage(err)).toMatch(/MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/)
      await producer.send({ messages: [{ topic, value: 'fits' }] }) // the thread goes on
    } finally {
      await producer.close()
    }
  })

  it('fails what a dying thread had in hand, and starts a new one for the next request', async () => {
    const silent = await startSilentBroker()
    const log = capturingLogger()
    const producer = new ThreadProducer({ settings: settingsFor([`127.0.0.1:${silent.port}`], { request_timeout_ms: 60_000 }), clientId: 'specserve-test' }, log)
    try {
      await producer.ready() // a thread that has loaded the client (one that dies loading: thread-restart.int.test.ts)
      const hanging = producer.send({ messages: [{ topic: 'never', value: 'waits' }] }).then(() => null, (e: unknown) => e as Error)
      const thread = (producer as unknown as { worker: { terminate(): Promise<number> } }).worker
      await thread.terminate()
      expect((await hanging)?.message).toMatch(/^the kafka producer thread exited with code \d+$/)
      expect(log.lines).toEqual(['the kafka producer thread stopped: its requests failed (their senders spool or retry them); the next request starts a new thread'])
    } finally {
      await producer.close()
      await silent.close()
    }
    const again = new ThreadProducer({ settings: settingsFor([broker.bootstrap]), clientId: 'specserve-test' }, log)
    const dying = again as unknown as { worker: { terminate(): Promise<number> } | null }
    try {
      await again.send({ messages: [{ topic: 'specserve.thread.again', value: 'one' }] })
      const first = dying.worker
      await first!.terminate()
      await again.send({ messages: [{ topic: 'specserve.thread.again', value: 'two' }] })
      expect(dying.worker).not.toBe(first)
    } finally {
      await again.close()
    }
    const got = await consumeUntil(broker.bootstrap, 'specserve.thread.again', (m) => m.length >= 2)
    expect(got.map((m) => m.value)).toEqual(['one', 'two'])
  })

  it('refuses every request, saying why once, when its thread cannot make the client, and starts no other thread', async () => {
    const log = capturingLogger()
    // Settings no client can be made from (a list of brokers that is not one): the client throws as it is made.
    const producer = new ThreadProducer({ settings: { ...settingsFor([broker.bootstrap]), brokers: 5 as never }, clientId: 'specserve-test' }, log)
    const thread = () => (producer as unknown as { worker: object | null }).worker
    try {
      await expect(producer.send({ messages: [{ topic: 'specserve.thread.broken', value: 'x' }] })).rejects.toThrow(/not iterable/)
      await producer.ready()
      expect(thread()).toBeNull()
      await expect(producer.metadata({ topics: ['specserve.thread.broken'] })).rejects.toThrow(/not iterable/)
      expect(thread()).toBeNull()
      expect(log.lines).toEqual(['the kafka producer could not be made: nothing is sent (records are spooled, stream answers retried) until the gateway is restarted with settings the client takes'])
    } finally {
      await producer.close()
    }
  })

  it('starts its thread on ready(), which resolves once the thread has loaded the client', async () => {
    const producer = new ThreadProducer({ settings: settingsFor([broker.bootstrap]), clientId: 'specserve-test' }, capturingLogger())
    const thread = () => (producer as unknown as { worker: object | null }).worker
    expect(thread()).toBeNull()
    const ready = producer.ready()
    expect(thread()).not.toBeNull()
    expect(producer.ready()).toBe(ready)
    await ready
    await producer.send({ messages: [{ topic: 'specserve.thread.ready', value: 'x' }] })
    await producer.close()
    await producer.ready() // closed: resolves, starts nothing
    expect(thread()).toBeNull() // the closed one is gone, and no new one started
  })

  it('leaves no thread after close(), and refuses requests then', async () => {
    const producer = new ThreadProducer({ settings: settingsFor([broker.bootstrap]), clientId: 'specserve-test' }, capturingLogger())
    await producer.send({ messages: [{ topic: 'specserve.thread.close', value: 'x' }] })
    const thread = (producer as unknown as { worker: { threadId: number; once(event: 'exit', listener: () => void): void } }).worker
    const exited = new Promise<void>((resolve) => thread.once('exit', resolve))
    await producer.close(true)
    await exited
    await expect(producer.send({ messages: [{ topic: 'specserve.thread.close', value: 'y' }] })).rejects.toThrow('the kafka producer is closed')
    await producer.close() // twice is fine
  })

  it('runs on the event loop, saying so, when the settings cannot be passed to a thread', async () => {
    const log = capturingLogger()
    const settings = { ...settingsFor([broker.bootstrap]), tls: { checkServerIdentity: () => undefined } }
    const producer = recordProducer(settings, log)
    expect(producer).toBeInstanceOf(LoopProducer)
    expect(log.lines).toEqual(['output.kafka settings cannot be passed to a thread: the kafka producer runs on the event loop'])
    await producer.close()
  })
})

describe('the process', () => {
  /** Runs a script in a fresh Node that makes a ThreadProducer against the broker; what it printed, once it has exited by itself. */
  const exitsBy = (body: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const script = `import { ThreadProducer } from ${JSON.stringify(new URL('../../src/kafka/thread-producer.ts', import.meta.url).href)}
import { kafkaSettings } from ${JSON.stringify(new URL('../../src/kafka/config.ts', import.meta.url).href)}
const producer = new ThreadProducer({ settings: kafkaSettings({ kafka: { brokers: [${JSON.stringify(broker.bootstrap)}] } }, '/tmp'), clientId: 'specserve-test' }, { info() {}, warn() {}, error() {} })
${body}`
      const file = join(tempDir('specserve-thread-alive-'), 'alive.mjs')
      writeFileSync(file, script)
      execFile(process.execPath, [file], { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout.trim())))
    })

  it('is kept alive by a thread with a request in hand or still loading, not by an idle one', async () => {
    // Nothing else keeps these processes alive: each line is printed only if the thread kept it so, and each exits by itself once the thread is idle.
    expect(await exitsBy(`producer.send({ messages: [{ topic: 'specserve.thread.alive', value: 'x' }] }).then(() => console.log('sent'))`)).toBe('sent')
    expect(await exitsBy(`producer.ready().then(() => console.log('loaded'))`)).toBe('loaded')
  })
})

describe('the record sink', () => {
  it('publishes through its own thread with producer_thread: the event loop starts no produce request', async () => {
    const topic = 'specserve.thread.sink'
    const sink = new KafkaSink(kafkaSettings({ kafka: { brokers: [broker.bootstrap], topic, linger_ms: 5, spool_dir: tempDir('specserve-thread-sink-'), producer_thread: true } }, '/tmp')!, capturingLogger())
    const sends = sendsOnThisThread()
    sink.start()
    try {
      for (let i = 0; i < 500; i++) sink.write(paddedRecord(`r${i}`, 100))
      await sink.close(30_000)
      expect(sink.status()).toMatchObject({ published: 500, dropped: 0, spooled_records: 0 })
      expect(sends.count()).toBe(0)
    } finally {
      sends.stop()
    }
    const got = await consumeUntil(broker.bootstrap, topic, (m) => m.length >= 500)
    expect(got.map((m) => m.key)).toEqual(Array.from({ length: 500 }, (_, i) => `r${i}`))
  })
})
