// A gateway's Kafka producer: the client, as our settings configure it. Loaded where a
// producer is made (the producer thread, or the event loop with producer_thread: false).
import { Producer, stringSerializers } from '@platformatic/kafka'
import { silentLogger, type Logger } from '../types.ts'
import { connectionOptions, errorMessage, javaCompatiblePartitioner, type GatewayProducer, type MessageKey, type MessageValue } from './client.ts'
import type { KafkaSettings } from './config.ts'

const keyBytes = (key?: MessageKey): Buffer | undefined => (typeof key === 'string' ? Buffer.from(key, 'utf8') : key)
const valueBytes = (value?: MessageValue): Buffer | undefined => (typeof value === 'string' ? Buffer.from(value, 'utf8') : value)

/** A producer of `clientId`; an 'error' event of the client (none is documented) is logged, never thrown at the process. */
export function createProducer(settings: KafkaSettings, clientId: string, log: Logger = silentLogger): GatewayProducer {
  const producer = new Producer({
    ...connectionOptions(settings, clientId),
    serializers: { ...stringSerializers, key: keyBytes, value: valueBytes },
    acks: settings.acks,
    compression: settings.compression,
    idempotent: settings.idempotent,
    autocreateTopics: true,
    // Fail fast into the spool rather than hold a batch through long retry loops.
    retries: 2,
    partitioner: javaCompatiblePartitioner(),
  })
  producer.on('error', (err: unknown) => log.warn({ client: clientId, error: errorMessage(err) }, 'kafka producer error'))
  return producer
}
