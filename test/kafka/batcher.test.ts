// ProduceBatcher (stream mode's answers): one produce request per turn of the event loop,
// bounded by a count and by bytes of keys and values, each message's promise settling with
// its own request.
import { describe, expect, it } from 'vitest'
import { ProduceBatcher, RefusedMessagesError, type OutgoingMessage } from '../../src/kafka/batcher.ts'
import type { GatewayProducer } from '../../src/kafka/client.ts'

/** A producer that records each produce request and acknowledges it, or refuses the ones `refuse` picks. */
function recordingProducer(refuse: (messages: readonly OutgoingMessage[]) => boolean = () => false) {
  const requests: OutgoingMessage[][] = []
  const producer = {
    send({ messages }: { messages: OutgoingMessage[] }): Promise<void> {
      requests.push(messages)
      return refuse(messages) ? Promise.reject(new Error('MESSAGE_TOO_LARGE')) : Promise.resolve()
    },
  }
  return { requests, producer: producer as unknown as GatewayProducer }
}

const message = (key: string, valueBytes: number): OutgoingMessage => ({ topic: 'answers', key, value: 'v'.repeat(valueBytes) })

describe('ProduceBatcher', () => {
  it('sends what one turn queued as one request', async () => {
    const { requests, producer } = recordingProducer()
    const batcher = new ProduceBatcher(producer, 100, 1_000_000)
    await Promise.all([batcher.send(message('a', 10)), batcher.send(message('b', 10)), batcher.send(message('c', 10))])
    expect(requests.map((r) => r.map((m) => m.key))).toEqual([['a', 'b', 'c']])
    expect(batcher.requests).toBe(1)
  })

  it('starts a new request when the count is reached', async () => {
    const { requests, producer } = recordingProducer()
    const batcher = new ProduceBatcher(producer, 2, 1_000_000)
    await Promise.all(['a', 'b', 'c'].map((k) => batcher.send(message(k, 10))))
    expect(requests.map((r) => r.map((m) => m.key))).toEqual([['a', 'b'], ['c']])
  })

  it('keeps a request under batch_bytes of keys and values with Kafka\'s framing; a larger message goes alone', async () => {
    const { requests, producer } = recordingProducer()
    const batcher = new ProduceBatcher(producer, 100, 183)
    // 1-byte key + 40-byte value, 61 framed: two and the batch header (61) fit in 183 bytes, a third would not.
    await Promise.all([
      batcher.send(message('a', 40)),
      batcher.send(message('b', 40)),
      batcher.send(message('c', 40)),
      batcher.send(message('d', 250)),
      batcher.send(message('e', 10)),
    ])
    expect(requests.map((r) => r.map((m) => m.key))).toEqual([['a', 'b'], ['c'], ['d'], ['e']])
  })

  it('settles each message with its own request: one refused does not fail the others', async () => {
    const { producer } = recordingProducer((messages) => messages.some((m) => m.key === 'big'))
    const batcher = new ProduceBatcher(producer, 100, 100)
    const small = batcher.send(message('s', 40))
    const big = batcher.send(message('big', 200))
    await expect(small).resolves.toBeUndefined()
    await expect(big).rejects.toThrow('MESSAGE_TOO_LARGE')
  })

  it('sends a request the broker refuses as too large again in halves, in order, and names the single messages it still refuses', async () => {
    // As @platformatic/kafka nests the broker's error: retries, then the response, then the protocol error.
    const protocol = Object.assign(new Error('The request included a message larger than the max message size the server will accept.'), { apiId: 'MESSAGE_TOO_LARGE' })
    const tooLarge = new AggregateError([new AggregateError([protocol], 'Received response with error')], 'Producing messages failed.')
    const requests: OutgoingMessage[][] = []
    const send = ({ messages }: { messages: OutgoingMessage[] }): Promise<void> => {
      requests.push(messages)
      return messages.reduce((n, m) => n + m.value.length + 1, 0) > 100 ? Promise.reject(tooLarge) : Promise.resolve()
    }
    const producer = { send } as unknown as GatewayProducer
    const batcher = new ProduceBatcher(producer, 100, 1000)
    const big = message('big', 150)
    const sent = [message('a', 40), message('b', 40), message('c', 40), big, message('d', 10)].map((m) => batcher.send(m))
    const err = await sent[0]!.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RefusedMessagesError)
    expect([...(err as RefusedMessagesError).refused]).toEqual([big])
    expect(requests.map((r) => r.map((m) => m.key))).toEqual([['a', 'b', 'c', 'big', 'd'], ['a', 'b', 'c'], ['a', 'b'], ['c'], ['big', 'd'], ['big'], ['d']])
  })
})
