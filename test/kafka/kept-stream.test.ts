// A consumer's message stream kept open, without a broker: the first consume() failing (the
// gateway starts anyway and keeps trying), a stream that ends, and a consumer that emits
// 'error' (a failed rejoin) each lead to a new stream after a backoff; close() stops it all.
import { EventEmitter } from 'node:events'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Consumer, MessagesStream } from '@platformatic/kafka'
import { KeptStream } from '../../src/kafka/kept-stream.ts'
import type { Logger } from '../../src/types.ts'

class FakeStream extends EventEmitter {
  paused = false
  closed = false
  pause(): void {
    this.paused = true
  }
  resume(): void {
    this.paused = false
  }
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.emit('close')
  }
}

class FakeConsumer extends EventEmitter {
  untracked: string[] = []
  topics = { untrack: (topic: string) => this.untracked.push(topic) }
}

const log: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined }
type Stream = MessagesStream<string, string, string, string>

let consumer: FakeConsumer
let outcomes: (FakeStream | Error)[]
let opened: { stream: FakeStream; again: boolean }[]
let lost: number
let kept: KeptStream<Stream>

function keep(): KeptStream<Stream> {
  return new KeptStream<Stream>(consumer as unknown as Consumer<string, string, string, string>, log, {
    topic: 'in',
    name: 'test stream',
    consume: async () => {
      const next = outcomes.shift() ?? new Error('no broker')
      if (next instanceof Error) throw next
      return next as unknown as Stream
    },
    opened: (stream, again) => opened.push({ stream: stream as unknown as FakeStream, again }),
    lost: () => lost++,
    backoffMs: (attempt) => 1000 * attempt,
  })
}

beforeEach(() => {
  vi.useFakeTimers()
  consumer = new FakeConsumer()
  outcomes = []
  opened = []
  lost = 0
  kept = keep()
})

afterEach(async () => {
  await kept.close()
  vi.useRealTimers()
})

describe('KeptStream', () => {
  it('starts while the brokers are unreachable, untracks the topic, and consumes once they answer', async () => {
    outcomes = [new Error('ECONNREFUSED'), new Error('ECONNREFUSED')]
    await kept.start()
    expect(kept.state).toBe('reconnecting')
    expect(kept.lastError).toContain('ECONNREFUSED')
    expect(consumer.untracked).toEqual(['in'])

    await vi.advanceTimersByTimeAsync(1000) // attempt 1 fails too
    expect(kept.state).toBe('reconnecting')
    const stream = new FakeStream()
    outcomes.push(stream)
    await vi.advanceTimersByTimeAsync(1999)
    expect(opened).toEqual([])
    await vi.advanceTimersByTimeAsync(1) // attempt 2, 2 s after
    expect(opened).toEqual([{ stream, again: false }])
    expect(kept.state).toBe('consuming')
    expect(kept.reopens).toBe(0)
  })

  it('clears last_error once consuming again: after brokers unreachable at start, a stream that ended in an error, a failed rejoin', async () => {
    const [first, second, third] = [new FakeStream(), new FakeStream(), new FakeStream()]
    outcomes = [new Error('connect ECONNREFUSED 127.0.0.1:9092'), first, second, third]
    await kept.start()
    expect([kept.state, kept.lastError]).toEqual(['reconnecting', 'connect ECONNREFUSED 127.0.0.1:9092'])
    await vi.advanceTimersByTimeAsync(1000)
    expect([kept.state, kept.lastError]).toEqual(['consuming', null])
    // The library ends a stream with an error it does not retry (a topic not there yet, a fetch that failed 4 times).
    first.emit('error', new Error('Unknown topic in.'))
    await first.close()
    expect([kept.state, kept.lastError]).toEqual(['reconnecting', 'Unknown topic in'])
    await vi.advanceTimersByTimeAsync(1000)
    expect([kept.stream, kept.state, kept.lastError]).toEqual([second, 'consuming', null])
    consumer.emit('error', new Error('joinGroup failed 4 times.'))
    expect([kept.state, kept.lastError]).toEqual(['reconnecting', 'joinGroup failed 4 times'])
    await vi.advanceTimersByTimeAsync(1000)
    expect([kept.stream, kept.state, kept.lastError]).toEqual([third, 'consuming', null])
  })

  it('holds the start at most 5 s for brokers that do not answer, and consumes once the first consume() ends', async () => {
    let answer: (stream: Stream) => void = () => undefined
    const slow = new KeptStream<Stream>(consumer as unknown as Consumer<string, string, string, string>, log, {
      topic: 'in',
      name: 'slow stream',
      consume: () => new Promise<Stream>((resolve) => (answer = resolve)),
      opened: () => undefined,
      backoffMs: () => 1000,
    })
    let started = false
    const starting = slow.start().then(() => (started = true))
    await vi.advanceTimersByTimeAsync(4999)
    expect(started).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    await starting
    expect(slow.state).toBe('starting')
    const stream = new FakeStream()
    answer(stream as unknown as Stream)
    await vi.advanceTimersByTimeAsync(0)
    expect([slow.state, slow.stream]).toEqual(['consuming', stream])
    await slow.close()
  })

  it('opens a new stream after one ends, and keeps a pause across it', async () => {
    const first = new FakeStream()
    const second = new FakeStream()
    outcomes = [first, second]
    await kept.start()
    kept.pause()
    await first.close()
    expect([kept.state, lost]).toEqual(['reconnecting', 1])
    await vi.advanceTimersByTimeAsync(1000)
    expect(opened.map((o) => o.again)).toEqual([false, true])
    expect(kept.stream).toBe(second)
    expect(second.paused).toBe(true)
    expect(kept.reopens).toBe(1)
    kept.resume()
    expect(second.paused).toBe(false)
  })

  it("closes the stream of a consumer that emits 'error' and consumes again, without throwing", async () => {
    const first = new FakeStream()
    const second = new FakeStream()
    outcomes = [first, second]
    await kept.start()
    consumer.emit('error', new Error('rejoin failed'))
    // At once, not when the stream has closed: a commit through it from now on would never settle.
    expect([kept.stream, kept.state, lost]).toEqual([null, 'reconnecting', 1])
    expect(kept.consumerErrors).toBe(1)
    expect(kept.lastError).toContain('rejoin failed')
    await vi.advanceTimersByTimeAsync(0)
    expect(first.closed).toBe(true)
    await vi.advanceTimersByTimeAsync(1000)
    expect(kept.stream).toBe(second)
    expect(kept.state).toBe('consuming')
    expect(lost).toBe(1)
  })

  it('stopped for a shutdown, still reports a stream that ends or a consumer that errs as lost, and opens none again', async () => {
    // Commits through it would never settle: the shutdown sends them again through the consumer.
    for (const end of ['stream', 'consumer'] as const) {
      const stream = new FakeStream()
      outcomes = [stream]
      lost = 0
      const stopped = keep()
      await stopped.start()
      stopped.stop()
      if (end === 'stream') await stream.close()
      else consumer.emit('error', new Error('rejoin failed'))
      expect([stopped.stream, stopped.state, lost]).toEqual([null, 'closed', 1])
      outcomes.push(new FakeStream())
      await vi.advanceTimersByTimeAsync(60_000)
      expect(opened).toHaveLength(1)
      opened.length = 0
      await stopped.close()
      expect(lost).toBe(1) // its own close is no loss
    }
  })

  it('does not report its own close as a loss', async () => {
    outcomes = [new FakeStream()]
    await kept.start()
    await kept.close()
    expect(lost).toBe(0)
  })

  it('stops trying once closed', async () => {
    outcomes = [new Error('ECONNREFUSED')]
    await kept.start()
    await kept.close()
    expect(kept.state).toBe('closed')
    outcomes.push(new FakeStream())
    await vi.advanceTimersByTimeAsync(60_000)
    expect(opened).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
  })
})
