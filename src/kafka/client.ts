// Our small interface over @platformatic/kafka: client options from our settings, the
// partitioner, what its errors say, shared by the record sink (output/), stream mode
// (api/kafka/) and the model stream (registry/). The library itself is loaded only where a
// client is made (producer.ts, stream mode, the model stream): a gateway whose producer runs
// on a thread of its own does not load it on the event loop.
import type { ConnectionOptions } from 'node:tls'
import type { Producer, ProducerOptions } from '@platformatic/kafka'
import type { KafkaSettings } from './config.ts'

/**
 * The wait between the client's own retries of a step. Its steps nest (a fetch retries, and
 * each try refreshes the metadata, which retries too): at the library's 1 s a consumer took
 * about 12 s to say the brokers had gone. Our own loops (the sink's spool, the streams'
 * reopening) back off from there by retry_backoff_ms.
 */
export const CLIENT_RETRY_DELAY_MS = 250

/** Connection settings every client (producer, consumer) of a gateway uses. */
export function connectionOptions(settings: Pick<KafkaSettings, 'brokers' | 'tls' | 'sasl' | 'requestTimeoutMs'>, clientId: string): Pick<ProducerOptions<string, string, string, string>, 'clientId' | 'bootstrapBrokers' | 'tls' | 'sasl' | 'connectTimeout' | 'requestTimeout' | 'timeout' | 'retryDelay'> {
  return {
    clientId,
    bootstrapBrokers: [...settings.brokers],
    ...(settings.tls ? { tls: settings.tls === true ? {} : (settings.tls as ConnectionOptions) } : {}),
    ...(settings.sasl ? { sasl: { ...settings.sasl } } : {}),
    connectTimeout: Math.min(settings.requestTimeoutMs, 3000),
    requestTimeout: settings.requestTimeoutMs,
    timeout: settings.requestTimeoutMs,
    retryDelay: CLIENT_RETRY_DELAY_MS,
  }
}

/**
 * A message key: text (a record's ensemble or id), or a stream-mode request's key as the bytes
 * it came with, so its answer goes out under the same key (a key need not be text).
 */
export type MessageKey = string | Buffer
/** A message value: text, or its UTF-8 bytes already (the producer thread's, which arrive encoded). */
export type MessageValue = string | Buffer
/** The producers of a gateway: keys as text or bytes, values as text or bytes, headers as text. */
export type GatewayProducer = Producer<MessageKey, MessageValue, string, string>

/**
 * Kafka's default partitioner for keyed messages, as the Java client has it
 * (`toPositive(murmur2(key)) % partitions`; the client applies the modulo), so a key lands on
 * the partition any Java producer would pick. The library's own murmur2 works on unbounded
 * BigInts, quadratic in the key's length (a 240 KB key: 7 s of a blocked event loop); this
 * one is 32-bit and linear. Messages without a key go round-robin per topic, as before.
 */
export function javaCompatiblePartitioner(): (message: { readonly topic: string }, key: Buffer | undefined) => number {
  const next = new Map<string, number>()
  return (message, key) => {
    if (key) return murmur2(key) & 0x7fffffff
    const n = next.get(message.topic) ?? 0
    next.set(message.topic, (n + 1) & 0x7fffffff)
    return n
  }
}

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2): the signed 32-bit hash. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995
  const length = data.length
  let h = (0x9747b28c ^ length) | 0
  const whole = length & ~3
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    k = Math.imul(k, m)
    k ^= k >>> 24
    k = Math.imul(k, m)
    h = Math.imul(h, m) ^ k
  }
  switch (length & 3) {
    case 3:
      h ^= data[whole + 2]! << 16
    // falls through
    case 2:
      h ^= data[whole + 1]! << 8
    // falls through
    case 1:
      h ^= data[whole]!
      h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

/** How deep errorMessage() and the broker-error checks follow the client's nested errors (the producer thread keeps this much of them). */
export const ERROR_DEPTH = 6

/**
 * The client's errors nest (retries in an AggregateError of per-attempt AggregateErrors of the
 * broker's ProtocolError): the distinct messages down the last branch (the last attempt's: a
 * broker gone after a first refusal says `connect ECONNREFUSED`), with the broker's error id,
 * so that `last_error` names the cause (MESSAGE_TOO_LARGE), not only "Producing messages failed".
 */
export const errorMessage = (err: unknown): string => {
  const parts: string[] = []
  let e = err as KafkaError | undefined
  for (let depth = 0; e && depth < ERROR_DEPTH; depth++) {
    const text = (e.apiId ? `${e.message} (${e.apiId})` : (e.message ?? String(e))).replace(/\.$/, '')
    if (text && !parts.includes(text)) parts.push(text)
    e = e.errors?.at(-1) ?? (e.cause as KafkaError | undefined)
  }
  return parts.length ? parts.join(': ') : String(err)
}

/** Whether the broker's error id is one of `ids` anywhere in the client's nested errors (retries, per-attempt causes). */
function hasBrokerError(err: unknown, ids: readonly string[], depth = 0): boolean {
  const e = err as KafkaError | undefined
  if (!e || typeof e !== 'object' || depth > ERROR_DEPTH) return false
  if (e.apiId !== undefined && ids.includes(e.apiId)) return true
  return (e.errors ?? []).some((inner) => hasBrokerError(inner, ids, depth + 1)) || hasBrokerError(e.cause, ids, depth + 1)
}

const TOO_LARGE = ['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'] as const
const DENIED = ['TOPIC_AUTHORIZATION_FAILED'] as const

/** The broker refused a produce request (or one record of it) as over its size limit: resending it whole never succeeds. */
export const isTooLarge = (err: unknown): boolean => hasBrokerError(err, TOO_LARGE)

/** How far sendInHalves got: `done` items from the head acknowledged or refused; a failure stops it. */
export type HalvesOutcome = { readonly done: number; readonly failed: false } | { readonly done: number; readonly failed: true; readonly error: unknown }

/**
 * Sends `items` in one produce request; a request the broker refuses as too large is sent
 * again in halves, in order, down to single items, each of which it still refuses goes to
 * `refused` (resending it would stall everything behind it for ever). Any other failure
 * stops it: what follows was not sent. `stop` is asked between halves (a shutdown).
 */
export async function sendInHalves<T>(items: readonly T[], send: (items: readonly T[]) => Promise<void>, refused: (item: T, err: unknown) => void, stop: () => boolean = () => false): Promise<HalvesOutcome> {
  try {
    await send(items)
    return { done: items.length, failed: false }
  } catch (err) {
    if (!isTooLarge(err)) return { done: 0, failed: true, error: err }
    if (items.length === 1) {
      refused(items[0]!, err)
      return { done: 1, failed: false }
    }
    const half = Math.ceil(items.length / 2)
    const first = await sendInHalves(items.slice(0, half), send, refused, stop)
    if (first.done < half || stop()) return first
    const second = await sendInHalves(items.slice(half), send, refused, stop)
    return second.failed ? { done: half + second.done, failed: true, error: second.error } : { done: half + second.done, failed: false }
  }
}

/** The broker refused to let this client write to a topic (its ACLs): resending never succeeds until an operator grants it. */
export const isDenied = (err: unknown): boolean => hasBrokerError(err, DENIED)

interface KafkaError {
  readonly message?: string
  readonly apiId?: string
  readonly errors?: readonly KafkaError[]
  readonly cause?: unknown
}

/** A message's key and value in bytes: what max_record_bytes counts. */
export const messageBytes = (key: MessageKey | null | undefined, value: string): number => Buffer.byteLength(value) + (key ? Buffer.byteLength(key) : 0)

/**
 * What Kafka's record batch adds to keys and values, which the broker's max.message.bytes
 * counts too: a header per batch, and per record its length, attributes, timestamp and offset
 * deltas and the lengths of its key, value and headers (varints: at most this much for
 * records under 64 MiB). batch_bytes bounds a batch with them, so a full batch under the
 * topic's limit is not refused as too large and sent again in halves.
 */
export const BATCH_HEADER_BYTES = 61
export const RECORD_FRAMING_BYTES = 20

/** A message as a record batch counts it: key, value and framing. */
export const framedBytes = (key: MessageKey | null | undefined, value: string): number => messageBytes(key, value) + RECORD_FRAMING_BYTES
