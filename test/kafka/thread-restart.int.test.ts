// A producer thread that dies before it has loaded the client would likely die again, and
// each start costs about half a second of CPU: the next one starts only after a backoff that
// doubles from retry_backoff_ms (reset once a thread loads), and requests are refused at once
// meanwhile, saying why. Real threads (one that throws as it loads, or after it has loaded);
// performance.now() faked to step through the waits.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { kafkaSettings } from '../../src/kafka/config.ts'
import { THREAD_RESTART_MAX_MS, ThreadProducer } from '../../src/kafka/thread-producer.ts'
import type { Logger } from '../../src/types.ts'

const shortLived = new URL('./threads/short-lived.ts', import.meta.url)
/** What the next thread started does (its environment is a copy of this one's at its start). */
const BEHAVIOUR = 'SPECSERVE_TEST_THREAD'
const request = { messages: [{ topic: 'specserve.thread.restart', value: 'x' }] }

function capturingLogger(): Logger & { lines: { msg: string; restartAfterMs: unknown }[] } {
  const lines: { msg: string; restartAfterMs: unknown }[] = []
  const keep = (fields: object, msg: string): void => void lines.push({ msg, restartAfterMs: (fields as { restart_after_ms?: unknown }).restart_after_ms })
  return { lines, info: keep, warn: keep, error: keep }
}

const producerFor = (log: Logger): ThreadProducer =>
  new ThreadProducer({ settings: kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'], producer_thread: true, retry_backoff_ms: 1000 } }, '/tmp')!, clientId: 'specserve-test' }, log, shortLived)

const threadOf = (producer: ThreadProducer): object | null => (producer as unknown as { worker: object | null }).worker

/** Runs `steps` against a producer of the short-lived thread with performance.now() faked, and closes it. */
async function withProducer(steps: (producer: ThreadProducer, log: ReturnType<typeof capturingLogger>) => Promise<void>): Promise<void> {
  vi.useFakeTimers({ toFake: ['performance'] })
  const log = capturingLogger()
  const producer = producerFor(log)
  try {
    await steps(producer, log)
  } finally {
    await producer.close()
  }
}

const refusedFor = (ms: number): RegExp => new RegExp(`^the kafka producer thread stopped while loading the client \\(this thread dies while loading\\): a new one starts at the first request after ${ms} ms more$`)

afterEach(() => {
  vi.useRealTimers()
  delete process.env[BEHAVIOUR]
})

describe('a producer thread that dies while loading', () => {
  it('fails the request in hand, then refuses requests at once until the backoff has passed, starting no thread', () =>
    withProducer(async (producer, log) => {
      await expect(producer.send(request)).rejects.toThrow('this thread dies while loading')
      expect(log.lines).toEqual([{ msg: expect.stringMatching(/^the kafka producer thread stopped while loading the client/), restartAfterMs: 1000 }])
      await expect(producer.send(request)).rejects.toThrow(refusedFor(1000))
      await expect(producer.metadata({ topics: ['specserve.thread.restart'] })).rejects.toThrow(refusedFor(1000))
      await producer.ready() // resolves (the thread has stopped) and starts none
      expect(threadOf(producer)).toBeNull()
      vi.advanceTimersByTime(999)
      await expect(producer.send(request)).rejects.toThrow(refusedFor(1))
      expect(threadOf(producer)).toBeNull()
      expect(log.lines).toHaveLength(1)
    }))

  it('starts a new thread once the backoff has passed, and waits twice as long after that one dies too, up to a cap', () =>
    withProducer(async (producer, log) => {
      await expect(producer.send(request)).rejects.toThrow('this thread dies while loading')
      for (const waited of [1000, 2000, 4000]) {
        vi.advanceTimersByTime(waited)
        await expect(producer.send(request)).rejects.toThrow('this thread dies while loading') // a new thread, which died too
      }
      expect(log.lines.map((l) => l.restartAfterMs)).toEqual([1000, 2000, 4000, 8000])
      vi.advanceTimersByTime(7999)
      await expect(producer.send(request)).rejects.toThrow(refusedFor(1))
      // ready() starts the next one too, once its time has come.
      vi.advanceTimersByTime(1)
      await producer.ready()
      expect(log.lines).toHaveLength(5)
      for (let i = 0; i < 4; i++) {
        vi.advanceTimersByTime(THREAD_RESTART_MAX_MS)
        await producer.ready()
      }
      expect(log.lines.map((l) => l.restartAfterMs).slice(-3)).toEqual([THREAD_RESTART_MAX_MS, THREAD_RESTART_MAX_MS, THREAD_RESTART_MAX_MS])
    }))

  it('waits retry_backoff_ms again, not twice the last wait, once a thread has loaded in between', () =>
    withProducer(async (producer, log) => {
      await expect(producer.send(request)).rejects.toThrow('this thread dies while loading')
      vi.advanceTimersByTime(1000)
      await expect(producer.send(request)).rejects.toThrow('this thread dies while loading')
      vi.advanceTimersByTime(2000)
      process.env[BEHAVIOUR] = 'loads'
      await producer.ready()
      expect(threadOf(producer)).not.toBeNull() // loaded
      await expect(producer.send(request)).rejects.toThrow('this thread dies after loading')
      delete process.env[BEHAVIOUR]
      // A thread that had loaded is replaced at the next request; this one dies loading, and the wait starts over.
      await expect(producer.send(request)).rejects.toThrow('this thread dies while loading')
      expect(log.lines.map((l) => l.restartAfterMs)).toEqual([1000, 2000, undefined, 1000])
      expect(log.lines[2]!.msg).toMatch(/^the kafka producer thread stopped: its requests failed/)
    }))

  it('starts nothing once closed during a backoff', async () => {
    vi.useFakeTimers({ toFake: ['performance'] })
    const producer = producerFor(capturingLogger())
    await expect(producer.send(request)).rejects.toThrow('this thread dies while loading')
    await producer.close()
    vi.advanceTimersByTime(1000)
    await expect(producer.send(request)).rejects.toThrow('the kafka producer is closed')
    await producer.ready()
    expect(threadOf(producer)).toBeNull()
  })
})
