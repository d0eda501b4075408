// The sink's spool replay against a stand-in producer that acknowledges or fails each
// produce request on cue (a real broker cannot be made to fail one request of a split batch
// deterministically): a failed compaction does not slow the replay, a batch acknowledged in
// part after an overflow spooled it is not sent twice, a malformed spool line is dropped, and
// records that came during a send go once their linger is over, not a linger after that.
import { readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeEach, expect, it, vi } from 'vitest'
import { kafkaSettings } from '../../src/kafka/config.ts'
import { KafkaSink, type RecordProducer } from '../../src/output/kafka.ts'
import type { PendingRecord } from '../../src/output/record.ts'
import type { Logger } from '../../src/types.ts'
import { tempDir } from '../temp-dirs.ts'
import { timersRun } from './silent-broker.ts'

let dir: string

beforeEach(() => {
  dir = tempDir('specserve-sink-')
})

type Answer = (keys: string[]) => Promise<void>
const acknowledge: Answer = async () => {}

/** A producer whose n-th request gets `answers[n]` (acknowledged when there is none); it keeps the keys it acknowledged, in order. */
class CuedProducer {
  readonly acknowledged: string[] = []
  readonly requests: string[][] = []
  private readonly arrived: (() => void)[] = []
  private readonly answers: Answer[]
  constructor(answers: Answer[] = []) {
    this.answers = answers
  }

  readonly send = (async ({ messages }: { messages: { key?: string }[] }) => {
    const keys = messages.map((m) => m.key ?? '')
    this.requests.push(keys)
    this.arrived.shift()?.()
    await (this.answers[this.requests.length - 1] ?? acknowledge)(keys)
    this.acknowledged.push(...keys)
    return {}
  }) as unknown as RecordProducer['send']

  readonly metadata = (async () => ({})) as unknown as RecordProducer['metadata']
  readonly close = (async () => {}) as unknown as RecordProducer['close']

  /** Resolves when the next request arrives. */
  nextRequest(): Promise<void> {
    return new Promise((resolve) => this.arrived.push(resolve))
  }
}

function capturingLogger(): Logger & { errors: string[] } {
  const errors: string[] = []
  return { errors, info() {}, warn() {}, error: (_obj, msg) => errors.push(msg) }
}

const record = (id: string): PendingRecord => ({ key: id, encode: () => JSON.stringify({ id }) }) as unknown as PendingRecord

/** Lets the timers already due run (the sink's own zero-delay flush among them). */

function sink(topic: string, producer: CuedProducer, log: Logger, kafka: Record<string, unknown> = {}): KafkaSink {
  // A backoff no test waits out: a replay that stops until it is over fails the test.
  const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:1'], topic, spool_dir: dir, retry_backoff_ms: 600_000, ...kafka } }, dir)!
  return new KafkaSink(settings, log, producer as unknown as RecordProducer)
}

it('replays the spool at full speed when compacting it fails on a full disk, and says so once', async () => {
  const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`)
  writeFileSync(join(dir, 'full.spool'), keys.map((k) => `"${k}"\t{"id":"${k}","pad":"${'x'.repeat(150)}"}\n`).join('')) // ~400 KB
  const producer = new CuedProducer()
  const log = capturingLogger()
  const records = sink('full', producer, log, { batch_size: 100, spool_max_bytes: 1_000_000 })
  records.start()
  symlinkSync('/dev/full', join(dir, 'full.spool.compact')) // where the copy goes: every write fails with ENOSPC
  try {
    await vi.waitFor(() => expect(records.status()).toMatchObject({ published: 2000, spooled_records: 0 }), { timeout: 5000, interval: 10 })
    expect(producer.acknowledged).toEqual(keys)
    expect(log.errors).toEqual(['spool compaction failed: replayed records keep their disk space until the spool is replayed in full or the gateway restarts'])
    const open = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`)
      } catch {
        return ''
      }
    })
    expect(open.filter((target) => target.startsWith(dir) || target === '/dev/full')).toEqual([])
  } finally {
    await records.close(0)
  }
})

it('does not send again the half of a split batch the broker acknowledged, when the other half failed after an overflow spooled the batch', async () => {
  let refuseWhole!: (err: Error) => void
  const tooLarge = Object.assign(new Error('the request is too large'), { apiId: 'MESSAGE_TOO_LARGE' })
  const producer = new CuedProducer([
    () => new Promise((_, reject) => (refuseWhole = reject)), // the batch: held, then refused as too large
    acknowledge, // its first half
    () => Promise.reject(new Error('connection reset')), // its second half
  ])
  const records = sink('split', producer, capturingLogger(), { batch_size: 10, linger_ms: 0, buffer_records: 15 })
  records.start()
  const onTheWire = producer.nextRequest()
  for (let i = 0; i < 10; i++) records.write(record(`a${i}`))
  await onTheWire
  for (let i = 0; i < 15; i++) records.write(record(`b${i}`))
  await timersRun() // the buffer is full while the batch is on the wire: both go to the spool
  expect(records.status()).toMatchObject({ spooled_records: 25, buffered: 0 })
  const firstHalf = producer.nextRequest()
  const secondHalf = producer.nextRequest()
  refuseWhole(tooLarge)
  await firstHalf
  await secondHalf
  await timersRun() // the second half has failed: the sink waits for its backoff
  expect(records.status().state).toBe('spooling')
  await records.close(5000) // one more replay of the spool, acknowledged
  const sent = [...Array.from({ length: 10 }, (_, i) => `a${i}`), ...Array.from({ length: 15 }, (_, i) => `b${i}`)]
  expect(producer.acknowledged).toEqual(sent)
  expect(records.status()).toMatchObject({ published: 25, spooled_records: 0, dropped: 0 })
})

it('drops a malformed spool line (counted, logged) and replays the records around it in order', async () => {
  writeFileSync(join(dir, 'corrupt.spool'), `"k1"\t{"id":"ok1"}\n{"id":"no-tab"}\n"k3"\t{"id":"ok3"}\n`)
  const producer = new CuedProducer()
  const log = capturingLogger()
  const records = sink('corrupt', producer, log)
  records.start()
  try {
    await vi.waitFor(() => expect(records.status()).toMatchObject({ published: 2, spooled_records: 0 }), { timeout: 5000, interval: 10 })
    expect(producer.acknowledged).toEqual(['k1', 'k3'])
    expect(records.status().dropped).toBe(1)
    expect(log.errors).toContain('malformed lines in the spool file skipped (not records this gateway wrote whole)')
  } finally {
    await records.close(0)
  }
})

it('sends records that came during a slow send once the oldest has lingered, not a linger after the next one came', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
  let acknowledgeFirst!: () => void
  const producer = new CuedProducer([() => new Promise<void>((resolve) => (acknowledgeFirst = resolve))])
  const records = sink('linger', producer, capturingLogger(), { linger_ms: 100, batch_size: 100 })
  try {
    records.start()
    records.write(record('x'))
    await vi.advanceTimersByTimeAsync(100) // x's linger: sent, and the send hangs
    expect(producer.requests).toEqual([['x']])
    await vi.advanceTimersByTimeAsync(10)
    records.write(record('a')) // at 110: its linger ends at 210, while the send still hangs
    await vi.advanceTimersByTimeAsync(110)
    records.write(record('b')) // at 220
    await vi.advanceTimersByTimeAsync(40)
    acknowledgeFirst() // at 260: a has waited 150 ms, past its linger
    await vi.advanceTimersByTimeAsync(1)
    expect(producer.requests).toEqual([['x'], ['a', 'b']])
  } finally {
    vi.useRealTimers()
    await records.close(0)
  }
})
