// Messages sent in the same turn of the event loop go to Kafka in one produce request. A
// produce request costs the client and the broker about half a millisecond of CPU whatever
// its size (docs/output.md), so stream mode, which answers many messages at once, must
// not pay it per answer. Every message of a batch shares the batch's one promise: it
// resolves when the broker acknowledges the batch, or rejects (each sender retries on
// its own). One promise and one setImmediate per batch, none per message. A batch is also
// bounded in bytes (encoded keys and values with Kafka's framing; one larger message goes alone), as the serving
// records' are: a request over the broker's message.max.bytes is refused whole, and the
// same messages, retried together, would be refused again. A request the broker refuses as
// too large all the same (a topic's limit under max_record_bytes) is sent again in halves.
import { BATCH_HEADER_BYTES, framedBytes, sendInHalves, type MessageKey } from './client.ts'
import type { RecordProducer } from './thread-producer.ts'

/**
 * A batch's rejection when the broker refused some of its messages alone as too large, and
 * acknowledged every other one: a sender whose message is not in `refused` has it delivered.
 */
export class RefusedMessagesError extends Error {
  readonly refused: ReadonlySet<OutgoingMessage>
  constructor(refused: ReadonlySet<OutgoingMessage>, cause: unknown) {
    super(`${refused.size} message(s) refused by the broker as too large (MESSAGE_TOO_LARGE)`, { cause })
    this.name = 'RefusedMessagesError'
    this.refused = refused
  }
}

export interface OutgoingMessage {
  readonly topic: string
  readonly key?: MessageKey | undefined
  readonly value: string
}

export class ProduceBatcher {
  private readonly producer: RecordProducer
  private readonly maxMessages: number
  private readonly maxBytes: number
  private pending: OutgoingMessage[] = []
  private pendingBytes = 0
  private batch: Promise<void> | null = null
  private settle: { resolve(): void; reject(err: unknown): void } | null = null
  private scheduled: NodeJS.Immediate | null = null
  private readonly flushNow = (): void => this.flush()
  /** Produce requests sent so far. */
  requests = 0

  constructor(producer: RecordProducer, maxMessages: number, maxBytes: number) {
    this.producer = producer
    this.maxMessages = maxMessages
    this.maxBytes = maxBytes
  }

  /** Queues the message; the promise settles with its batch. */
  send(message: OutgoingMessage): Promise<void> {
    const size = framedBytes(message.key, message.value)
    if (this.pending.length > 0 && BATCH_HEADER_BYTES + this.pendingBytes + size > this.maxBytes) this.flush()
    if (!this.batch) {
      const { promise, resolve, reject } = Promise.withResolvers<void>()
      this.batch = promise
      this.settle = { resolve, reject }
      this.scheduled = setImmediate(this.flushNow)
    }
    const batch = this.batch
    this.pendingBytes += size
    if (this.pending.push(message) >= this.maxMessages) this.flush()
    return batch
  }

  /** Sends what is queued now (also at close, so nothing waits on a timer that will not fire). */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled)
    this.scheduled = null
    const messages = this.pending
    const settle = this.settle
    this.pending = []
    this.pendingBytes = 0
    this.batch = null
    this.settle = null
    if (!settle || messages.length === 0) return
    const refused = new Set<OutgoingMessage>()
    let refusal: unknown
    const onRefused = (message: OutgoingMessage, err: unknown): void => {
      refused.add(message)
      refusal ??= err
    }
    sendInHalves(messages, this.produce, onRefused).then(
      (out) => (out.failed ? settle.reject(out.error) : refused.size ? settle.reject(new RefusedMessagesError(refused, refusal)) : settle.resolve()),
      (err: unknown) => settle.reject(err),
    )
  }

  /** One produce request (sendInHalves makes more of a batch the broker refuses as too large). */
  private readonly produce = async (messages: readonly OutgoingMessage[]): Promise<void> => {
    this.requests++
    await this.producer.send({ messages: messages as OutgoingMessage[] })
  }
}
