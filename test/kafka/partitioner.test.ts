// Keyed answers, dead letters and serving records land on the partition Kafka's Java client
// would pick (toPositive(murmur2(key)) % partitions), computed in time linear in the key:
// the library's own murmur2 is quadratic (a 240 KB key blocked the event loop for 7 s).
import { randomBytes } from 'node:crypto'
import { compatibilityPartitioner, murmur2 as libraryMurmur2 } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { javaCompatiblePartitioner, murmur2 } from '../../src/kafka/client.ts'
import { createProducer } from '../../src/kafka/producer.ts'
import { kafkaSettings } from '../../src/kafka/config.ts'

/** org.apache.kafka.common.utils.UtilsTest#testMurmur2: the Java client's own expectations. */
const JAVA_VECTORS: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
]

describe('Java-compatible partitioner', () => {
  it("hashes like the Java client's Utils.murmur2", () => {
    for (const [key, hash] of JAVA_VECTORS) expect(murmur2(Buffer.from(key)), key).toBe(hash)
  })

  it("picks the same partition as the library's Java-compatible partitioner for thousands of keys of every length", () => {
    const ours = javaCompatiblePartitioner()
    const message = { topic: 't' }
    for (let i = 0; i < 5000; i++) {
      const key = i % 2 ? randomBytes(i % 97) : Buffer.from(`key-${i}-é-${'x'.repeat(i % 13)}`)
      const expected = compatibilityPartitioner(message as never, key)
      expect(ours(message, key)).toBe(expected)
      expect(murmur2(key)).toBe(libraryMurmur2(key))
      for (const partitions of [1, 3, 7, 12]) expect(ours(message, key) % partitions).toBe(expected % partitions)
    }
  })

  it('sends messages without a key round-robin, per topic', () => {
    const ours = javaCompatiblePartitioner()
    expect([ours({ topic: 'a' }, undefined), ours({ topic: 'b' }, undefined), ours({ topic: 'a' }, undefined), ours({ topic: 'a' }, undefined)]).toEqual([0, 0, 1, 2])
  })

  it("a producer we create puts a 256 KB key on the Java client's partition (not the library's unsigned one, after seconds of hashing)", async () => {
    // A key whose hash is negative: there `>>> 0` and Java's toPositive disagree modulo 3.
    let key = ''
    for (let fill = 0; !key || murmur2(Buffer.from(key)) >= 0; fill++) key = String.fromCharCode(65 + fill).repeat(256 * 1024)
    const java = (murmur2(Buffer.from(key)) & 0x7fffffff) % 3
    const producer = createProducer(kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'] } }, '/tmp')!, 'partitioner-test')
    try {
      const [raw] = producer.getSendTopicPartitions({ messages: [{ topic: 'answers', key, value: 'v' }] }).get('answers')!
      // The client applies the modulo by the partition count itself.
      expect(raw! % 3).toBe(java)
    } finally {
      await producer.close()
    }
  })
})
