// Stream mode's shutdown: the grace period bounds it, even when the client never settles an
// offset commit (one still pending when its message stream ended, e.g. while the consumer was
// rejoining the group after a broker outage). That message is scored again later.
import type { Message } from '@platformatic/kafka'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { StreamScorer } from '../../../src/api/kafka/stream.ts'
import type { Gateway } from '../../../src/gateway.ts'
import { kafkaSettings } from '../../../src/kafka/config.ts'
import { silentLogger } from '../../../src/types.ts'

const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'], shutdown_grace_ms: 3000, stream: { input_topic: 'requests' } } }, '/tmp')!

/** A scorer whose consumer, producer and sender are stand-ins: no broker, nothing sent. */
async function scorerWithoutBroker(): Promise<StreamScorer> {
  // A poison message never reaches the gateway: it is dead-lettered at once.
  const scorer = new StreamScorer({} as Gateway, settings, silentLogger)
  const parts = scorer as unknown as { intake: { close(): Promise<void> }; producer: { close(force: boolean): Promise<void> }; sender: unknown }
  // The real ones were never started (no connection); closed so they leave nothing behind.
  await parts.intake.close()
  await parts.producer.close(true)
  const intake = { stop() {}, close: () => Promise.resolve(), owns: () => true, pause() {}, resume() {} }
  Object.assign(scorer, { intake, producer: { close: () => Promise.resolve() }, sender: { deadLetter: () => Promise.resolve(true) } })
  return scorer
}

afterEach(() => vi.useRealTimers())

describe('stream mode shutdown', () => {
  it('returns once the grace period is over although an offset commit never settles', async () => {
    const scorer = await scorerWithoutBroker()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    let commits = 0
    const message = { topic: 'requests', partition: 0, offset: 5n, key: 'k', value: 'not JSON', commit: () => (commits++, new Promise<void>(() => {})) }
    ;(scorer as unknown as { accept(m: Message<string, string, string, string>): void }).accept(message as unknown as Message<string, string, string, string>)
    await vi.advanceTimersByTimeAsync(0)
    expect(commits).toBe(1)

    let closed = false
    void scorer.close().then(() => (closed = true))
    await vi.advanceTimersByTimeAsync(2999)
    expect(closed).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(closed).toBe(true)
  })
})
