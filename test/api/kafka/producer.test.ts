// Stream mode's answers and dead letters go through the client on the event loop by default, or
// through a producer on its own thread with output.kafka.producer_thread, as the record sink's do. What the thread does with them: test/kafka/thread-producer.int.test.ts;
// answers reaching the broker through it: stream.e2e.test.ts.
import { expect, it } from 'vitest'
import { StreamScorer } from '../../../src/api/kafka/stream.ts'
import type { Gateway } from '../../../src/gateway.ts'
import { kafkaSettings } from '../../../src/kafka/config.ts'
import { LoopProducer, ThreadProducer } from '../../../src/kafka/thread-producer.ts'
import { silentLogger } from '../../../src/types.ts'

const scorerWith = (kafka: Record<string, unknown>) => {
  const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'], stream: { input_topic: 'requests' }, ...kafka } }, '/tmp')!
  return new StreamScorer({} as Gateway, settings, silentLogger) as unknown as { intake: { close(): Promise<void> }; producer: { close(force: boolean): Promise<void> } }
}

it.each([
  ['the client on the event loop by default', {}, LoopProducer],
  ['its own thread with producer_thread: true', { producer_thread: true }, ThreadProducer],
])('answers through %s', async (_name, kafka, kind) => {
  const scorer = scorerWith(kafka)
  try {
    expect(scorer.producer).toBeInstanceOf(kind)
  } finally {
    // Never started (no connection, no thread): closed so they leave nothing behind.
    await scorer.intake.close()
    await scorer.producer.close(true)
  }
})
