// Stream mode's answers and dead letters: what the broker can never accept is dead-lettered
// with its reason instead of stalling the partition for ever (a dead letter it can never
// accept either lets its request go, logged); everything else is retried, logged again every
// few attempts; a dead letter never carries an oversized key.
import type { Msg } from '../../../src/api/kafka/intake.ts'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { AnswerSender, deadLetter, LOG_EVERY_ATTEMPTS, MAX_KEY_BYTES } from '../../../src/api/kafka/sender.ts'
import type { OutgoingMessage } from '../../../src/kafka/batcher.ts'
import type { GatewayProducer } from '../../../src/kafka/client.ts'
import { kafkaSettings } from '../../../src/kafka/config.ts'
import type { Logger } from '../../../src/types.ts'

const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'], retry_backoff_ms: 1000, stream: { input_topic: 'requests' } } }, '/tmp')!
/** A request as the intake reads it: key and value as the bytes sent. */
const request = (key: string | Buffer, offset = 7n): Msg => ({ topic: 'requests', partition: 0, offset, key: Buffer.from(key), value: Buffer.from('{"ensemble":"e","inputs":{}}') }) as Msg

/** A producer that acknowledges, or refuses a request with what `refuse` returns for it. */
function fakeProducer(refuse: (messages: readonly OutgoingMessage[]) => unknown) {
  const acknowledged: OutgoingMessage[] = []
  const producer = {
    send({ messages }: { messages: OutgoingMessage[] }): Promise<void> {
      const error = refuse(messages)
      if (error) return Promise.reject(error)
      acknowledged.push(...messages)
      return Promise.resolve()
    },
  }
  return { acknowledged, producer: producer as unknown as GatewayProducer }
}

/** The client's nesting: retries in an AggregateError around the broker's ProtocolError. */
const brokerError = (apiId: string): unknown => Object.assign(new Error('Producing messages failed.'), { errors: [Object.assign(new Error(`broker: ${apiId}`), { apiId })] })

function recordingLogger() {
  const warnings: unknown[] = []
  const errors: [unknown, string][] = []
  const log = { info() {}, debug() {}, error: (obj: unknown, msg: string) => errors.push([obj, msg]), warn: (obj: unknown) => warnings.push(obj), child: () => log } as unknown as Logger
  return { warnings, errors, log }
}

const letters = (acknowledged: OutgoingMessage[]) => acknowledged.filter((m) => m.topic === 'requests.dlq').map((m) => ({ key: m.key?.toString(), ...JSON.parse(m.value) }))

afterEach(() => vi.useRealTimers())
/** Shutdown's grace is not over (the sender's wind-down signal, never aborted here). */
const running = new AbortController().signal

describe('AnswerSender', () => {
  it('dead-letters an answer the broker refuses alone as too large, and the rest of its batch is answered', async () => {
    const { acknowledged, producer } = fakeProducer((messages) => messages.some((m) => m.topic === 'requests.results' && m.value.length > 100) && brokerError('MESSAGE_TOO_LARGE'))
    const sender = new AnswerSender(producer, settings, recordingLogger().log, running)
    const results = await Promise.all([sender.answer(request('big'), 'x'.repeat(500)), sender.answer(request('small', 8n), '{"ok":true}')])
    expect(results).toEqual([true, true])
    expect(sender).toMatchObject({ answered: 1, deadLettered: 1, refused: 1, retrying: 0 })
    expect(acknowledged.filter((m) => m.topic === 'requests.results').map((m) => m.key?.toString())).toEqual(['small'])
    expect(letters(acknowledged)).toEqual([
      expect.objectContaining({ key: 'big', error: { code: 'RESPONSE_TOO_LARGE', message: expect.stringMatching(/^the broker refused the answer: .*MESSAGE_TOO_LARGE/) } }),
    ])
  })

  it('dead-letters an answer whose topic the gateway may not write to, as PERMISSION_DENIED', async () => {
    const { acknowledged, producer } = fakeProducer((messages) => messages.some((m) => m.topic === 'requests.results') && brokerError('TOPIC_AUTHORIZATION_FAILED'))
    const sender = new AnswerSender(producer, settings, recordingLogger().log, running)
    expect(await sender.answer(request('k'), '{"ok":true}')).toBe(true)
    expect(letters(acknowledged)).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: 'PERMISSION_DENIED', message: expect.stringMatching(/TOPIC_AUTHORIZATION_FAILED/) }) })])
  })

  it('answers and dead-letters a request under its key\'s own bytes, a key that is not UTF-8 too (named in base64 in the letter)', async () => {
    const { acknowledged, producer } = fakeProducer(() => false)
    const sender = new AnswerSender(producer, settings, recordingLogger().log, running)
    // A binary key (an 8-byte id, say): read as text it would be U+FFFD, and answered under other bytes.
    const key = Buffer.from([0x00, 0xff, 0x10, 0x80, 0xc3, 0x28, 0x7f, 0xfe])
    expect(await sender.answer(request(key), '{"ok":true}')).toBe(true)
    expect(await sender.deadLetter(request(key, 8n), 'BAD_INPUT', 'no such input')).toBe(true)
    expect(acknowledged.map((m) => [m.topic, Buffer.from(m.key!).equals(key)])).toEqual([
      ['requests.results', true],
      ['requests.dlq', true],
    ])
    expect(JSON.parse(acknowledged[1]!.value).source).toEqual({ topic: 'requests', partition: 0, offset: '8', key: null, key_base64: key.toString('base64') })
  })

  it('sends a dead letter the dead-letter topic refuses as too large again at its smallest', async () => {
    const { acknowledged, producer } = fakeProducer((messages) => messages.some((m) => m.topic === 'requests.dlq' && m.value.includes('"value":"')) && brokerError('MESSAGE_TOO_LARGE'))
    const sender = new AnswerSender(producer, settings, recordingLogger().log, running)
    expect(await sender.deadLetter(request('k'), 'BAD_INPUT', 'no such input')).toBe(true)
    expect(letters(acknowledged)).toEqual([expect.objectContaining({ key: undefined, value: null, value_bytes: 28, error: expect.objectContaining({ code: 'BAD_INPUT' }) })])
  })

  it('lets a request go (logged, counted, committed) when the dead-letter topic refuses even its smallest dead letter', async () => {
    // The gateway may not write to the dead-letter topic: retrying would stall the partition for good.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] })
    const { acknowledged, producer } = fakeProducer((messages) => messages.some((m) => m.topic === 'requests.dlq') && brokerError('TOPIC_AUTHORIZATION_FAILED'))
    const { errors, log } = recordingLogger()
    const sender = new AnswerSender(producer, settings, log, running)
    let done: boolean | undefined
    void sender.deadLetter(request('k', 41n), 'BAD_REQUEST', 'message value is not JSON').then((d) => (done = d))
    await vi.advanceTimersByTimeAsync(60_000)
    expect(done).toBe(true)
    expect(acknowledged).toEqual([])
    expect(sender).toMatchObject({ deadLettered: 0, refusedDeadLetters: 1, retrying: 0 })
    expect(errors.at(-1)).toEqual([
      expect.objectContaining({ topic: 'requests.dlq', code: 'BAD_REQUEST', source: { topic: 'requests', partition: 0, offset: '41' }, reason: expect.stringMatching(/TOPIC_AUTHORIZATION_FAILED/) }),
      expect.stringMatching(/refused by the broker again/),
    ])
  })

  it('retries any other failure until acknowledged, counted as retrying, and logs again every few attempts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] })
    let failures = 2 * LOG_EVERY_ATTEMPTS + 5
    const { acknowledged, producer } = fakeProducer(() => failures-- > 0 && brokerError('NOT_LEADER_OR_FOLLOWER'))
    const { warnings, log } = recordingLogger()
    const sender = new AnswerSender(producer, settings, log, running)
    const answered = sender.answer(request('k'), '{"ok":true}')
    await vi.advanceTimersByTimeAsync(5_000)
    expect(sender).toMatchObject({ retrying: 1, lastError: expect.stringContaining('NOT_LEADER_OR_FOLLOWER') })
    await vi.advanceTimersByTimeAsync(60_000)
    expect(await answered).toBe(true)
    expect(sender).toMatchObject({ answered: 1, deadLettered: 0, retrying: 0, lastError: null })
    expect(acknowledged).toHaveLength(1)
    expect(warnings).toEqual([1, LOG_EVERY_ATTEMPTS + 1, 2 * LOG_EVERY_ATTEMPTS + 1].map((attempts) => expect.objectContaining({ attempts })))
  })

  it('keeps retrying through shutdown until its grace is over, then gives up at once, in the middle of a backoff', async () => {
    // The broker is restarting as the gateway shuts down: an answer acknowledged within the grace
    // is committed, not scored and published again after the restart.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] })
    let failures = 3
    const { acknowledged, producer } = fakeProducer(() => failures-- > 0 && brokerError('NOT_LEADER_OR_FOLLOWER'))
    const windDown = new AbortController()
    const sender = new AnswerSender(producer, settings, recordingLogger().log, windDown.signal)
    const answered = sender.answer(request('k'), '{"ok":true}')
    await vi.advanceTimersByTimeAsync(5_000)
    expect(await answered).toBe(true)
    expect(acknowledged).toHaveLength(1)

    failures = Infinity
    let given: boolean | undefined
    void sender.answer(request('k', 8n), '{"ok":true}').then((done) => (given = done))
    await vi.advanceTimersByTimeAsync(5_000)
    expect(given).toBeUndefined()
    expect(sender.retrying).toBe(1)
    windDown.abort()
    await vi.advanceTimersByTimeAsync(0)
    expect(given).toBe(false)
    expect(sender).toMatchObject({ answered: 1, retrying: 0 })
  })
})

describe('dead letter', () => {
  it('leaves an oversized key out: no message key, a prefix in source.key, its size in key_bytes', () => {
    const key = 'k'.repeat(MAX_KEY_BYTES + 1)
    const letter = deadLetter(request(key), 'PAYLOAD_TOO_LARGE', 'key too large', 1_000_000)
    expect(letter.key).toBeUndefined()
    expect(JSON.parse(letter.value).source).toEqual({ topic: 'requests', partition: 0, offset: '7', key: 'k'.repeat(256), key_bytes: MAX_KEY_BYTES + 1 })
  })

  it('leaves out an oversized key that is not UTF-8 too: a base64 prefix of its first 192 bytes, its size in key_bytes', () => {
    const key = Buffer.alloc(MAX_KEY_BYTES + 1, 0xff)
    const letter = deadLetter(request(key), 'PAYLOAD_TOO_LARGE', 'key too large', 1_000_000)
    expect(letter.key).toBeUndefined()
    expect(JSON.parse(letter.value).source).toEqual({ topic: 'requests', partition: 0, offset: '7', key: null, key_base64: key.subarray(0, 192).toString('base64'), key_bytes: MAX_KEY_BYTES + 1 })
  })

  it('leaves out a value that is not UTF-8, giving its size: the letter is JSON text', () => {
    const message = { ...request('k'), value: Buffer.from([0x7b, 0xff, 0x7d]) } as Msg
    expect(JSON.parse(deadLetter(message, 'BAD_REQUEST', 'not UTF-8', 15_000).value)).toMatchObject({ value: null, value_bytes: 3 })
  })

  it('counts the key in source.key too: a letter over the limit with it goes without it', () => {
    // 10 KB key: the message key and source.key together are over a 15 KB limit, even without the value.
    const key = 'k'.repeat(10_000)
    const message = { ...request(key), value: Buffer.from('v'.repeat(3000)) } as Msg
    const letter = deadLetter(message, 'BAD_REQUEST', 'not JSON', 15_000)
    expect(letter.key).toBeUndefined()
    expect(Buffer.byteLength(letter.value)).toBeLessThanOrEqual(15_000)
    expect(JSON.parse(letter.value)).toMatchObject({ source: { key: 'k'.repeat(256), key_bytes: 10_000 }, value: 'v'.repeat(3000) })
  })
})
