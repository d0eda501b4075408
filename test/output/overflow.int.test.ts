// The sink's overflow while a batch is on the wire, with a spool too full to take that batch:
// the newer records go to the spool, and the batch on the wire is dropped once (counted
// when its send fails, not also when it could not be spooled), never appended behind them.
// A record that cannot be encoded is dropped on its way to the spool, never thrown out of the
// sink's timer. The "broker" is a listener that accepts and never answers, so the send hangs
// until the client's request timeout.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { kafkaSettings } from '../../src/kafka/config.ts'
import { KafkaSink } from '../../src/output/kafka.ts'
import { Spool } from '../../src/output/spool.ts'
import { silentLogger } from '../../src/types.ts'
import { tempDir } from '../temp-dirs.ts'
import { paddedRecord, startSilentBroker, timersRun, type SilentBroker } from './silent-broker.ts'

let dir: string
let silent: SilentBroker
let port = 0

beforeAll(async () => {
  dir = tempDir('specserve-overflow-')
  silent = await startSilentBroker()
  port = silent.port
})

afterAll(async () => {
  await silent.close()
})

/** A record as the sink reads it: its key and its encoded value. */
const record = paddedRecord

/** A full batch of `first` sent (its send hangs on the silent broker), then `next` written behind it: the buffer overflows to the spool. */
async function overflowBehind(sink: KafkaSink, first: Parameters<KafkaSink['write']>[0][], next: Parameters<KafkaSink['write']>[0][]): Promise<void> {
  for (const r of first) sink.write(r)
  await timersRun() // the full batch is taken and sent: its send hangs
  for (const r of next) sink.write(r)
  await timersRun() // the buffer is full while a send is pending: it overflows to the spool
}

/** The keys the topic's spool file holds, in order. */
function spooledKeys(topic: string, maxBytes: number): (string | null)[] {
  const spool = new Spool(join(dir, `${topic}.spool`), maxBytes)
  spool.open()
  try {
    return spool.read(100).entries.map((e) => e.key)
  } finally {
    spool.close()
  }
}

const records = (prefix: string, n: number, pad: number) => Array.from({ length: n }, (_, i) => record(`${prefix}-${i}`, pad))

it('drops a batch on the wire the full spool could not take once, when its send fails, and keeps the newer records in order', { timeout: 30_000 }, async () => {
  const settings = kafkaSettings(
    {
      kafka: {
        brokers: [`127.0.0.1:${port}`],
        topic: 'overflow',
        spool_dir: dir,
        batch_size: 10,
        linger_ms: 0,
        buffer_records: 15,
        // The 15 small records fit; the 10 large ones on the wire (~10 KB) do not.
        spool_max_bytes: 4096,
        request_timeout_ms: 300,
        retry_backoff_ms: 60_000,
      },
    },
    dir,
  )!
  const sink = new KafkaSink(settings, silentLogger)
  sink.start()
  try {
    await overflowBehind(sink, records('big', 10, 1000), records('small', 15, 10))
    expect(sink.status()).toMatchObject({ spooled_records: 15, dropped: 0 })
    // Its send fails (the state says spooling before that: the brokers did not answer within request_timeout_ms).
    await vi.waitFor(() => expect(sink.status().dropped).toBe(10), { timeout: 20_000, interval: 20 })
    expect(sink.status()).toMatchObject({ state: 'spooling', spooled_records: 15, dropped: 10, published: 0 })
  } finally {
    await sink.close(0)
  }
  // What the spool holds, in order: the newer records, and nothing of the batch dropped after them.
  expect(spooledKeys('overflow', settings.spoolMaxBytes)).toEqual(Array.from({ length: 15 }, (_, i) => `small-${i}`))
})

it('drops a record that cannot be encoded when the buffer overflows to the spool, and spools the records around it', { timeout: 30_000 }, async () => {
  const settings = kafkaSettings({ kafka: { brokers: [`127.0.0.1:${port}`], topic: 'unencodable', spool_dir: dir, batch_size: 10, linger_ms: 0, buffer_records: 15, request_timeout_ms: 10_000, retry_backoff_ms: 60_000 } }, dir)!
  const sink = new KafkaSink(settings, silentLogger)
  sink.start()
  const unencodable = { key: 'bad', encode: () => { throw new RangeError('Invalid string length') } } as unknown as Parameters<KafkaSink['write']>[0]
  try {
    await overflowBehind(sink, records('first', 10, 10), records('next', 15, 10).map((r, i) => (i === 7 ? unencodable : r)))
    expect(sink.status()).toMatchObject({ spooled_records: 24, dropped: 1, buffered: 0 })
  } finally {
    await sink.close(0)
  }
})

it('of an overflow the spool can take only part of, spools the oldest records that fit and drops only the newer ones', { timeout: 30_000 }, async () => {
  const line = (key: string) => Buffer.byteLength(`${JSON.stringify(key)}\t${record(key, 10).encode()}\n`)
  const fits = [...Array.from({ length: 10 }, (_, i) => `first-${i}`), ...Array.from({ length: 5 }, (_, i) => `next-${i}`)]
  const spoolMaxBytes = fits.reduce((bytes, key) => bytes + line(key), 0) + 5
  const settings = kafkaSettings(
    { kafka: { brokers: [`127.0.0.1:${port}`], topic: 'partly', spool_dir: dir, batch_size: 10, linger_ms: 0, buffer_records: 15, spool_max_bytes: spoolMaxBytes, request_timeout_ms: 10_000, retry_backoff_ms: 60_000 } },
    dir,
  )!
  const sink = new KafkaSink(settings, silentLogger)
  sink.start()
  try {
    await overflowBehind(sink, records('first', 10, 10), records('next', 15, 10)) // the batch on the wire, then 5 of the 15 fit
    expect(sink.status()).toMatchObject({ spooled_records: 15, dropped: 10, buffered: 0 })
  } finally {
    await sink.close(0)
  }
  expect(spooledKeys('partly', settings.spoolMaxBytes)).toEqual(fits)
})
