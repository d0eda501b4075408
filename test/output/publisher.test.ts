// The publisher's state against brokers that accept connections and do not answer: said as
// spooling once a request has waited request_timeout_ms (whether more records come or not),
// and connected again (said, the error cleared) when that request's answer comes after all.
// Fake timers and a producer by hand.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { kafkaSettings } from '../../src/kafka/config.ts'
import { KafkaSink } from '../../src/output/kafka.ts'
import { Publisher, type RecordProducer } from '../../src/output/publisher.ts'
import { silentLogger } from '../../src/types.ts'
import { tempDir } from '../temp-dirs.ts'
import { paddedRecord } from './silent-broker.ts'

afterEach(() => vi.useRealTimers())

describe('Publisher, a probe with no answer', () => {
  it('turns spooling after request_timeout_ms, and connected again when the answer comes late', async () => {
    vi.useFakeTimers()
    const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:1'], topic: 't', request_timeout_ms: 300 } }, '/tmp')!
    const answer = Promise.withResolvers<void>()
    const producer = { metadata: () => answer.promise, send: () => Promise.resolve(), close: () => Promise.resolve() } as unknown as RecordProducer
    const lines: string[] = []
    const log = { info: (_: unknown, msg: string) => lines.push(msg), warn: (_: unknown, msg: string) => lines.push(msg), error: (_: unknown, msg: string) => lines.push(msg) }
    const publisher = new Publisher(settings, log, producer, () => undefined, () => false)
    const probing = publisher.probe()
    await vi.advanceTimersByTimeAsync(299)
    expect(publisher.state).toBe('connecting')
    await vi.advanceTimersByTimeAsync(1)
    expect([publisher.state, publisher.lastError]).toEqual(['spooling', 'no answer from the brokers within request_timeout_ms (300 ms)'])
    expect(lines).toEqual(['serving records not acknowledged by kafka: spooling them to disk'])
    answer.resolve()
    await probing
    expect([publisher.state, publisher.lastError]).toEqual(['connected', null])
    expect(lines.at(-1)).toBe('kafka reachable again: replaying the spool')
  })

  it('stays spooling when a send failed while the probe waited: the probe\'s late answer ends only the spooling it began', async () => {
    vi.useFakeTimers()
    const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:1'], topic: 't', request_timeout_ms: 300 } }, '/tmp')!
    const answer = Promise.withResolvers<void>()
    const refused = new Error('NOT_LEADER_OR_FOLLOWER')
    const producer = { metadata: () => answer.promise, send: () => Promise.reject(refused), close: () => Promise.resolve() } as unknown as RecordProducer
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined }
    const publisher = new Publisher(settings, quiet, producer, () => undefined, () => false)
    const probing = publisher.probe()
    expect(await publisher.publish([{ key: null, value: '{}' }])).toBe(0)
    expect([publisher.state, publisher.lastError]).toEqual(['spooling', 'NOT_LEADER_OR_FOLLOWER'])
    answer.resolve()
    await probing
    expect([publisher.state, publisher.lastError]).toEqual(['spooling', 'NOT_LEADER_OR_FOLLOWER'])
  })
})

describe('Publisher, a producer still loading its client (a thread of its own)', () => {
  const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:1'], topic: 't', request_timeout_ms: 300 } }, '/tmp')!

  /** A producer whose ready() resolves when the test says, and whose requests answer at once. */
  function loadingProducer(): { producer: RecordProducer; loaded: () => void; asked: string[] } {
    const load = Promise.withResolvers<void>()
    const asked: string[] = []
    const producer: RecordProducer = {
      ready: () => load.promise,
      metadata: async () => void asked.push('metadata'),
      send: async () => void asked.push('send'),
      close: async () => undefined,
    }
    return { producer, loaded: load.resolve, asked }
  }

  it("does not count the load against the probe's request_timeout_ms", async () => {
    vi.useFakeTimers()
    const { producer, loaded, asked } = loadingProducer()
    const publisher = new Publisher(settings, silentLogger, producer, () => undefined, () => false)
    const probing = publisher.probe()
    await vi.advanceTimersByTimeAsync(5000) // ten request timeouts while the client loads
    expect([publisher.state, asked]).toEqual(['connecting', []])
    loaded()
    await probing
    expect([publisher.state, asked]).toEqual(['connected', ['metadata']])
  })

  it("does not count the load against a send's request_timeout_ms", async () => {
    vi.useFakeTimers()
    const { producer, loaded, asked } = loadingProducer()
    const publisher = new Publisher(settings, silentLogger, producer, () => undefined, () => false)
    const publishing = publisher.publish([{ key: null, value: '{}' }])
    await vi.advanceTimersByTimeAsync(5000)
    expect([publisher.state, asked]).toEqual(['connecting', []])
    loaded()
    expect(await publishing).toBe(1)
    expect([publisher.state, publisher.published, asked]).toEqual(['connected', 1, ['send']])
  })
})

describe('KafkaSink, a send with no answer', () => {
  it.each([
    ['the batch on the wire alone', 10],
    ['the batch on the wire and 3 records behind it', 13],
  ])('turns spooling after request_timeout_ms though no record follows, and what waited in memory goes to disk then: %s', async (_what, written) => {
    vi.useFakeTimers()
    const dir = tempDir('specserve-stall-')
    const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:1'], topic: 'stall', spool_dir: dir, request_timeout_ms: 300, batch_size: 10, linger_ms: 0, retry_backoff_ms: 60_000 } }, dir)!
    const hung = Promise.withResolvers<void>()
    const producer = { metadata: () => Promise.resolve(), send: () => hung.promise, close: () => Promise.resolve() } as unknown as RecordProducer
    const sink = new KafkaSink(settings, silentLogger, producer)
    sink.start()
    try {
      for (let i = 0; i < written; i++) sink.write(paddedRecord(`r${i}`, 10))
      await vi.advanceTimersByTimeAsync(0) // the first 10 on the wire, hanging; the rest wait behind them
      expect(sink.status()).toMatchObject({ state: 'connected', buffered: written, spooled_records: 0 })
      await vi.advanceTimersByTimeAsync(300)
      expect(sink.status()).toMatchObject({ state: 'spooling', last_error: 'no answer from the brokers within request_timeout_ms (300 ms)', buffered: 0, spooled_records: written })
    } finally {
      vi.useRealTimers() // close()'s own grace timer
      await sink.close(0)
    }
  })
})
