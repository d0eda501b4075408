// What crosses to the producer thread: a request's values packed into one buffer that can be
// moved (not copied) and read back byte for byte, and the client's errors rebuilt so that the
// sink reads them as it reads the client's own (the broker's error id, the last attempt's cause).
import { describe, expect, it } from 'vitest'
import { errorMessage, isTooLarge } from '../../src/kafka/client.ts'
import { errorFromTree, errorTree, packMessages, unpackMessages, type OutgoingRecord } from '../../src/kafka/thread-protocol.ts'

describe('packed messages', () => {
  const messages: OutgoingRecord[] = [
    { topic: 'a', key: 'cancer', value: '{"id":"1","text":"héllo ✓ 🙂"}' },
    { topic: 'a', value: '' },
    { topic: 'b', key: Buffer.from([0, 255, 7]), value: 'x'.repeat(10_000) },
    { topic: 'a', key: '', value: '\u00e9' },
  ]

  it('reads back each key and value as their bytes, with their topic', () => {
    const packed = packMessages(messages)
    // Moved to another thread as the producer does: the sender's buffers are given up, not copied.
    const moved = structuredClone(packed, { transfer: [packed.bytes, packed.ends.buffer as ArrayBuffer, packed.keyed.buffer as ArrayBuffer] })
    expect(packed.bytes.byteLength).toBe(0)
    const out = unpackMessages(moved)
    expect(out.map((m) => m.value.toString('utf8'))).toEqual(messages.map((m) => m.value))
    expect(out.map((m) => m.value.length)).toEqual(messages.map((m) => Buffer.byteLength(m.value)))
    expect(out.map((m) => m.topic)).toEqual(['a', 'a', 'b', 'a'])
    expect(out.map((m) => m.key)).toEqual([Buffer.from('cancer'), undefined, Buffer.from([0, 255, 7]), Buffer.alloc(0)])
    expect(out.map((m) => 'key' in m)).toEqual([true, false, true, true])
  })

  it('copies a key that is a view into a larger buffer, not that buffer', () => {
    const received = Buffer.alloc(1 << 20, 0x61) // a fetch's whole answer, say
    const key = received.subarray(1000, 1004)
    key.set([1, 2, 3, 4])
    const packed = packMessages([{ topic: 't', key, value: 'v' }])
    expect(packed.bytes.byteLength).toBe(5)
    expect(unpackMessages(packed)[0]!.key).toEqual(Buffer.from([1, 2, 3, 4]))
  })

  it('packs an empty request', () => {
    expect(unpackMessages(packMessages([]))).toEqual([])
  })
})

describe('errors from the thread', () => {
  it("keep the broker's error id, the nested attempts and the cause", () => {
    const tooLarge = Object.assign(new Error('Received response with error while executing API Produce(v9)'), { apiId: 'MESSAGE_TOO_LARGE' })
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:9092', { cause: new Error('socket closed') })
    const err = new AggregateError([new AggregateError([refused], 'Producing messages failed.'), new AggregateError([tooLarge], 'Producing messages failed.')], 'send failed 2 times.')
    const rebuilt = errorFromTree(structuredClone(errorTree(err)))
    expect(rebuilt).toBeInstanceOf(Error)
    expect(rebuilt.name).toBe('AggregateError')
    expect(errorMessage(rebuilt)).toBe(errorMessage(err))
    expect(isTooLarge(rebuilt)).toBe(true)
    expect(isTooLarge(errorFromTree(errorTree(refused)))).toBe(false)
    expect((errorFromTree(errorTree(refused)).cause as Error).message).toBe('socket closed')
  })

  it('turns what is not an error into one', () => {
    expect(errorFromTree(errorTree('gone')).message).toBe('gone')
    expect(errorFromTree(errorTree(undefined)).message).toBe('undefined')
  })

  it('stops at a depth the sink reads, however deep the nesting', () => {
    let err: Error = new Error('innermost')
    for (let i = 0; i < 50; i++) err = new Error(`level ${i}`, { cause: err })
    let depth = 0
    for (let t: ReturnType<typeof errorTree> | undefined = errorTree(err); t; t = t.cause) depth++
    expect(depth).toBe(7)
  })
})
