// The client on the event loop (producer_thread: false) is made at its first request; once
// closed it refuses requests and makes no client again (a late record after a shutdown must not
// open a new connection that nothing will close).
import { describe, expect, it } from 'vitest'
import { kafkaSettings } from '../../src/kafka/config.ts'
import { LoopProducer } from '../../src/kafka/thread-producer.ts'
import { silentLogger } from '../../src/types.ts'

const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'] } }, '/tmp')!
const clientOf = (producer: LoopProducer): unknown => (producer as unknown as { client: unknown }).client

describe('LoopProducer', () => {
  it('makes no client until a request, and refuses every request after close() without making one', async () => {
    const producer = new LoopProducer(settings, 'specserve-test', silentLogger)
    expect(clientOf(producer)).toBeNull()
    await producer.close()
    await expect(producer.send({ messages: [{ topic: 't', value: 'late' }] })).rejects.toThrow('the kafka producer is closed')
    await expect(producer.metadata({ topics: ['t'] })).rejects.toThrow('the kafka producer is closed')
    expect(clientOf(producer)).toBeNull()
    await producer.close() // twice is fine
  })

  it('closes the client it made, and refuses requests then', async () => {
    const producer = new LoopProducer(settings, 'specserve-test', silentLogger)
    const made = (producer as unknown as { made(): Promise<{ close(force?: boolean): Promise<void> }> }).made()
    const client = await made
    let closedWith: boolean | undefined
    const close = client.close.bind(client)
    client.close = async (force?: boolean) => {
      closedWith = force
      await close(force)
    }
    await producer.close(true)
    expect(closedWith).toBe(true)
    await expect(producer.send({ messages: [{ topic: 't', value: 'late' }] })).rejects.toThrow('the kafka producer is closed')
  })
})
