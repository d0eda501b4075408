// `specserve publish-model`: one ModelDescriptor onto the models topic, keyed by the model
// name, with the model's bytes inline (or a location) and their sha256.
import { readFile } from 'node:fs/promises'
import { Producer } from '@platformatic/kafka'
import { connectionOptions, errorMessage, isTooLarge } from '../kafka/client.ts'
import { encodeDescriptor } from './descriptor.ts'
import { sha256Hex } from './sha256.ts'

export interface PublishOptions {
  readonly brokers: readonly string[]
  readonly topic: string
  readonly name: string
  /** 0: the next after the highest the gateway knows. */
  readonly version: number
  readonly description: string
  /** The model file: sent inline, unless `location` is given (then only hashed). */
  readonly file: string | undefined
  readonly location: string | undefined
  /** With a location and no file: the sha256 (lowercase hex) the record carries, so a replay is known before its location is read. */
  readonly sha256?: string | undefined
}

const bytesOf = (data?: Buffer | Uint8Array | string): Buffer | undefined => (data === undefined ? undefined : Buffer.from(data as Uint8Array))

export async function publishModel(options: PublishOptions): Promise<{ sha256: string; bytes: number }> {
  const data = options.file === undefined ? undefined : await readFile(options.file)
  const sha256 = data ? sha256Hex(data) : options.sha256
  // A record with no sha256 cannot be known for a replay unread (its location may be gone by then).
  if (!sha256) throw new Error('a model record needs a sha256: give the model file (hashed) or, with a location, its sha256')
  const value = encodeDescriptor({
    name: options.name,
    version: options.version,
    description: options.description,
    modelType: 'onnx',
    payload: options.location ? { kind: 'location', location: options.location } : { kind: 'data', data: data! },
    sha256,
  })
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    ...connectionOptions({ brokers: options.brokers, tls: undefined, sasl: undefined, requestTimeoutMs: 5000 }, 'specserve-publish-model'),
    serializers: { key: bytesOf, value: bytesOf, headerKey: bytesOf, headerValue: bytesOf },
    acks: -1,
    autocreateTopics: true,
  })
  try {
    await producer.send({ messages: [{ topic: options.topic, key: Buffer.from(options.name), value: Buffer.from(value) }] })
  } catch (err) {
    // The client's own words name neither the brokers nor the limit a large model meets.
    if (isTooLarge(err)) {
      throw new Error(`the broker refused the model's ${value.byteLength} bytes as too large (${errorMessage(err)}): raise max.message.bytes on the topic (and message.max.bytes on the brokers), or publish --location with the file served over HTTP`, { cause: err })
    }
    throw new Error(`${errorMessage(err)} (brokers ${options.brokers.join(', ')})`, { cause: err })
  } finally {
    await producer.close()
  }
  return { sha256, bytes: value.byteLength }
}
