// Stream mode's output side: answers to the output topic, dead letters to the dead-letter
// topic. A produce that fails is retried until acknowledged (the broker may be restarting),
// except a refusal that can never succeed, which would stall its partition for ever: a
// message the broker refuses alone as too large (the topic's max.message.bytes under
// max_record_bytes), or a topic this gateway may not write to. Such an answer is dead-lettered
// with the broker's reason; such a dead letter is sent again at its smallest (no value, no key),
// and if that is refused too, the request is logged, counted and let go (committed): nothing
// this gateway can do would get it anywhere, and its partition must go on.
import { isUtf8 } from 'node:buffer'
import { ProduceBatcher, RefusedMessagesError, type OutgoingMessage } from '../../kafka/batcher.ts'
import { errorMessage, isDenied, messageBytes } from '../../kafka/client.ts'
import type { RecordProducer } from '../../kafka/thread-producer.ts'
import type { KafkaSettings } from '../../kafka/config.ts'
import type { Logger } from '../../types.ts'
import type { Msg } from './intake.ts'
import { delay } from '../../at-most.ts'


/**
 * A request key over this is not used for the answer: keys are for partitioning, and a
 * key this large is a producer's mistake (it would also be sent twice in a dead letter).
 */
export const MAX_KEY_BYTES = 16 * 1024
/** How much of an oversized key a dead letter keeps in `source.key` (characters), or `source.key_base64` (bytes). */
const KEY_PREFIX_CHARS = 256
const KEY_PREFIX_BYTES = 192
/** A produce still failing is logged at its 1st attempt, then again every this many (the 11th, 21st…). */
export const LOG_EVERY_ATTEMPTS = 10

/** The broker's reason a message can never be accepted, and the dead-letter code it becomes. */
interface Refusal {
  readonly code: 'RESPONSE_TOO_LARGE' | 'PERMISSION_DENIED'
  readonly reason: string
}

const CLOSING = Symbol('closing')

/** Whether the key is over MAX_KEY_BYTES. */
export const keyTooLarge = (key: Buffer | undefined): boolean => key !== undefined && key.length > MAX_KEY_BYTES

/** The key a request's answer and dead letter go under: its own bytes; none for a message without one (or an empty one). */
const answerKey = (message: Msg): Buffer | undefined => (message.key?.length ? message.key : undefined)

export class AnswerSender {
  answered = 0
  deadLettered = 0
  /** Answers the broker refused for good, dead-lettered instead. */
  refused = 0
  /** Dead letters the broker refused for good, even at their smallest: those requests are committed unanswered. */
  refusedDeadLetters = 0
  /** Messages whose produce failed and is being retried now: a partition stalls behind each. */
  retrying = 0
  /** Why the last failed produce failed, while any is retried (null once none is). */
  lastError: string | null = null
  /** performance.now() when the produces retried now began to fail (NaN while none is). */
  failingSince = Number.NaN
  private readonly producer: RecordProducer
  private readonly settings: KafkaSettings
  private readonly log: Logger
  /** Aborted when shutdown's grace is over: a produce still failing then is given up (its message is scored again later). */
  private readonly windDown: AbortSignal
  /** Answers and dead letters decided in the same turn go in one produce request. */
  readonly outgoing: ProduceBatcher

  constructor(producer: RecordProducer, settings: KafkaSettings, log: Logger, windDown: AbortSignal) {
    this.producer = producer
    this.settings = settings
    this.log = log
    this.windDown = windDown
    this.outgoing = new ProduceBatcher(producer, settings.batchSize, settings.batchBytes)
  }

  /** True once the answer (or, refused for good, its dead letter) is acknowledged; false when given up at shutdown (its grace over). */
  async answer(message: Msg, value: string): Promise<boolean> {
    const refusal = await this.produce({ topic: this.settings.stream.outputTopic, key: answerKey(message), value })
    if (refusal === CLOSING) return false
    if (refusal === null) {
      this.answered++
      return true
    }
    this.refused++
    return this.deadLetter(message, refusal.code, `the broker refused the answer: ${refusal.reason}`)
  }

  /**
   * True once the dead letter is acknowledged, or refused for good even at its smallest (logged
   * and counted: the message may be committed); false when given up at shutdown.
   */
  async deadLetter(message: Msg, code: string, error: string): Promise<boolean> {
    const topic = this.settings.stream.deadLetterTopic
    let refusal = await this.produce({ topic, ...deadLetter(message, code, error, this.settings.maxRecordBytes) })
    if (refusal !== null && refusal !== CLOSING) {
      this.log.error({ topic, code, reason: refusal.reason }, 'dead letter refused by the broker; sending it without the request value and key')
      refusal = await this.produce({ topic, value: smallestLetter(message, code, `${error} (the full dead letter was refused: ${refusal.reason})`) })
    }
    if (refusal === CLOSING) return false
    if (refusal !== null) {
      // Retrying would stall the partition for good; the request is in this log line instead.
      this.refusedDeadLetters++
      this.log.error({ topic, code, error, source: sourceOf(message), reason: refusal.reason }, 'dead letter refused by the broker again: the request is committed without an answer or a dead letter')
      return true
    }
    this.deadLettered++
    return true
  }

  /** Produces until acknowledged (null); a refusal that can never succeed comes back; CLOSING when given up at shutdown. */
  private async produce(out: OutgoingMessage): Promise<Refusal | null | typeof CLOSING> {
    let failing = false
    try {
      for (let attempt = 0; ; attempt++) {
        let err: unknown
        try {
          await this.outgoing.send(out)
          return null
        } catch (e) {
          err = e
        }
        if (err instanceof RefusedMessagesError) {
          // The rest of its batch was acknowledged; only the messages in `refused` were not.
          if (!err.refused.has(out)) return null
          return { code: 'RESPONSE_TOO_LARGE', reason: errorMessage(err.cause) }
        } else if (isDenied(err)) {
          // A batch mixes topics: only a refusal of this message alone says its topic is the one denied.
          err = await this.producer.send({ messages: [out] }).then(() => null, (alone: unknown) => alone)
          if (err === null) return null
          if (isDenied(err)) return { code: 'PERMISSION_DENIED', reason: errorMessage(err) }
        }
        if (!failing && this.retrying++ === 0) this.failingSince = performance.now()
        failing = true
        this.lastError = errorMessage(err)
        if (attempt % LOG_EVERY_ATTEMPTS === 0) {
          this.log.warn({ topic: out.topic, attempts: attempt + 1, error: this.lastError }, 'stream result not acknowledged yet; retrying (its partition waits)')
        }
        // Retried through shutdown's grace too: given up at once, a message answered a moment
        // later would be scored and published again after the restart. (delay() ends at once once wound down.)
        await delay(Math.min(this.settings.retryBackoffMs, 100 * 2 ** attempt), this.windDown)
        if (this.windDown.aborted) return CLOSING
      }
    } finally {
      if (failing && --this.retrying === 0) {
        this.lastError = null
        this.failingSince = Number.NaN
      }
    }
  }
}

/**
 * The dead letter: the error, where the message came from, and its value, produced under the
 * message's key. `source` names the key as text, or as `key_base64` when its bytes are not
 * UTF-8. What would put it over `maxBytes` (key and value) is left out: first the request's
 * value (its size given as `value_bytes`), then the key (a prefix kept in `source`, its size
 * as `key_bytes`, and the letter sent without a key). An oversized key is left out from the start.
 */
export function deadLetter(message: Msg, code: string, error: string, maxBytes: number): { key?: Buffer; value: string } {
  const value = valueText(message.value)
  const letter = {
    error: { code, message: error },
    source: { ...sourceOf(message), ...keyFields(message.key, false) },
    value,
    ...(value === null && message.value ? { value_bytes: message.value.length } : {}),
    time: new Date().toISOString(),
  }
  const key = answerKey(message)
  if (!keyTooLarge(key)) {
    const text = JSON.stringify(letter)
    if (messageBytes(key, text) <= maxBytes) return { key, value: text }
    const withoutValue = JSON.stringify({ ...letter, value: null, value_bytes: message.value?.length ?? 0 })
    if (messageBytes(key, withoutValue) <= maxBytes) return { key, value: withoutValue }
  }
  const keyless = { ...letter, source: { ...letter.source, ...keyFields(message.key, true) } }
  const text = JSON.stringify(keyless)
  if (Buffer.byteLength(text) <= maxBytes) return { value: text }
  return { value: JSON.stringify({ ...keyless, value: null, value_bytes: message.value?.length ?? 0 }) }
}

/** The request's value as text for the letter; null for bytes that are not UTF-8 (`value_bytes` then says how many). */
function valueText(value: Buffer | undefined): string | null {
  return value === undefined ? null : isUtf8(value) ? value.toString('utf8') : null
}

/** A dead letter with nothing of the request but where it came from. */
function smallestLetter(message: Msg, code: string, error: string): string {
  const source = { ...sourceOf(message), ...keyFields(message.key, true) }
  return JSON.stringify({ error: { code, message: error }, source, value: null, value_bytes: message.value?.length ?? 0, time: new Date().toISOString() })
}

/** Where a request came from, as dead letters and logs name it. */
const sourceOf = (message: Msg): { topic: string; partition: number; offset: string } => ({ topic: message.topic, partition: message.partition, offset: String(message.offset) })

type KeyFields = { key: string | null; key_base64?: string; key_bytes?: number }

/** The key as a letter names it: text (null when there is none), or base64 when not UTF-8; `cut`: a long one's prefix and its size. */
function keyFields(key: Buffer | undefined, cut: boolean): KeyFields {
  if (key === undefined) return { key: null }
  if (isUtf8(key)) {
    const text = key.toString('utf8')
    return cut && text.length > KEY_PREFIX_CHARS ? { key: text.slice(0, KEY_PREFIX_CHARS), key_bytes: key.length } : { key: text }
  }
  const whole = !cut || key.length <= KEY_PREFIX_BYTES
  return { key: null, key_base64: (whole ? key : key.subarray(0, KEY_PREFIX_BYTES)).toString('base64'), ...(whole ? {} : { key_bytes: key.length }) }
}
