// Our small interface over @platformatic/kafka: client options from our settings, shared by
// the record sink (output/) and stream mode (api/kafka/).
import type { ConnectionOptions } from 'node:tls'
import { Producer, stringSerializers, type ProducerOptions } from '@platformatic/kafka'
import type { KafkaSettings } from './config.ts'

/** Connection settings every client (producer, consumer) of a gateway uses. */
export function connectionOptions(settings: Pick<KafkaSettings, 'brokers' | 'tls' | 'sasl' | 'requestTimeoutMs'>, clientId: string): Pick<ProducerOptions<string, string, string, string>, 'clientId' | 'bootstrapBrokers' | 'tls' | 'sasl' | 'connectTimeout' | 'requestTimeout' | 'timeout'> {
  return {
    clientId,
    bootstrapBrokers: [...settings.brokers],
    ...(settings.tls ? { tls: settings.tls === true ? {} : (settings.tls as ConnectionOptions) } : {}),
    ...(settings.sasl ? { sasl: { ...settings.sasl } } : {}),
    connectTimeout: Math.min(settings.requestTimeoutMs, 3000),
    requestTimeout: settings.requestTimeoutMs,
    timeout: settings.requestTimeoutMs,
  }
}

export function createProducer(settings: KafkaSettings, clientId: string): Producer<string, string, string, string> {
  return new Producer({
    ...connectionOptions(settings, clientId),
    serializers: stringSerializers,
    acks: settings.acks,
    compression: settings.compression,
    idempotent: settings.idempotent,
    autocreateTopics: true,
    // Fail fast into the spool rather than hold a batch through long retry loops.
    retries: 2,
    retryDelay: 250,
  })
}

export const errorMessage = (err: unknown): string => {
  const e = err as { message?: string; errors?: { message?: string }[] }
  const inner = e?.errors?.[0]?.message
  return inner && inner !== e.message ? `${e.message}: ${inner}` : String(e?.message ?? err)
}

/** A message's key and value in bytes: what batch_bytes and max_record_bytes count. */
export const messageBytes = (key: string | null | undefined, value: string): number => Buffer.byteLength(value) + (key ? Buffer.byteLength(key) : 0)
