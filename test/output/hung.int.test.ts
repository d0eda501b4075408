// The sink against a "broker" that accepts connections and never answers, so every send
// hangs until the client's request timeout: it says so and spools after request_timeout_ms,
// memory stays within buffer_records while a send hangs, and close() counts an abandoned
// batch once and leaves no timer behind. (A malformed
// spool line: spool.int.test.ts and kafka.int.test.ts, without waiting on timeouts.)
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { kafkaSettings } from '../../src/kafka/config.ts'
import { KafkaSink } from '../../src/output/kafka.ts'
import type { PendingRecord } from '../../src/output/record.ts'
import { silentLogger } from '../../src/types.ts'
import { root, startProcess } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { paddedRecord, startSilentBroker, timersRun, type SilentBroker } from './silent-broker.ts'

let dir: string
let silent: SilentBroker
let port = 0

beforeAll(async () => {
  dir = tempDir('specserve-hung-')
  silent = await startSilentBroker()
  port = silent.port
})

afterAll(async () => {
  await silent.close()
})

const record = (id: string): PendingRecord => paddedRecord(id, 50)

/** Lets the timers already due run (the sink's own zero-delay flush among them). */

function hungSink(topic: string, kafka: Record<string, unknown>): KafkaSink {
  const settings = kafkaSettings({ kafka: { brokers: [`127.0.0.1:${port}`], topic, spool_dir: dir, request_timeout_ms: 300, retry_backoff_ms: 60_000, ...kafka } }, dir)!
  const sink = new KafkaSink(settings, silentLogger)
  sink.start()
  return sink
}

it('keeps at most buffer_records in memory while a send hangs, even with a long linger: the rest goes to the spool', async () => {
  const sink = hungSink('hung.bound', { batch_size: 10, buffer_records: 20, linger_ms: 60_000 })
  try {
    for (let i = 0; i < 10; i++) sink.write(record(`a${i}`))
    await timersRun() // the full batch is on the wire: its send hangs
    for (let i = 0; i < 50; i++) sink.write(record(`b${i}`))
    await timersRun() // not the 60 s linger: the buffer reached its bound
    // The batch on the wire went to the spool with them (order): it counts there, not twice.
    expect(sink.status()).toMatchObject({ buffered: 0, spooled_records: 60, dropped: 0 })
  } finally {
    await sink.close(0)
  }
})

it('after close() on a hung send, the abandoned batch counts once: spooled, not also buffered', async () => {
  const sink = hungSink('hung.close', { batch_size: 10, linger_ms: 0 })
  for (let i = 0; i < 10; i++) sink.write(record(`c${i}`))
  await timersRun() // on the wire, hanging
  await sink.close(50)
  expect(sink.status()).toMatchObject({ state: 'closed', buffered: 0, spooled_records: 10 })
})

it('says spooling, with a warning, once the brokers have not answered within request_timeout_ms, and spools what comes meanwhile', async () => {
  const settings = kafkaSettings({ kafka: { brokers: [`127.0.0.1:${port}`], topic: 'hung.stalled', spool_dir: dir, request_timeout_ms: 300, retry_backoff_ms: 60_000, linger_ms: 0 } }, dir)!
  let said!: (msg: string) => void
  const warned = new Promise<string>((resolve) => (said = resolve))
  const stalled = new KafkaSink(settings, { ...silentLogger, warn: (_obj: unknown, msg: string) => said(msg) })
  stalled.start()
  try {
    // The client alone would try for tens of seconds (its retries over each of its steps) before saying anything.
    expect(await warned).toBe('serving records not acknowledged by kafka: spooling them to disk')
    expect(stalled.status()).toMatchObject({ state: 'spooling', last_error: 'no answer from the brokers within request_timeout_ms (300 ms)' })
    stalled.write(record('s0'))
    await timersRun()
    expect(stalled.status()).toMatchObject({ buffered: 0, spooled_records: 1 })
  } finally {
    await stalled.close(0)
  }
})

it('lets an embedding process exit after close(), when the grace ran out during a spool replay (no retry timer left)', { timeout: 30_000 }, async () => {
  const topic = 'hung.replay'
  writeFileSync(join(dir, `${topic}.spool`), `"k1"\t{"id":"s1"}\n"k2"\t{"id":"s2"}\n`)
  const script = join(dir, 'embedder.ts')
  const src = (path: string): string => pathToFileURL(join(root, 'src', path)).href
  writeFileSync(
    script,
    `import { kafkaSettings } from '${src('kafka/config.ts')}'
import { KafkaSink } from '${src('output/kafka.ts')}'
import { silentLogger } from '${src('types.ts')}'
const settings = kafkaSettings({ kafka: { brokers: ['127.0.0.1:${port}'], topic: '${topic}', spool_dir: '${dir}', request_timeout_ms: 5000, retry_backoff_ms: 600000 } }, '${dir}')
const sink = new KafkaSink(settings, silentLogger)
sink.start()
await sink.close(200) // the replay's send hangs past the grace
console.log('closed', JSON.stringify(sink.status()))
`,
  )
  const embedder = startProcess(process.execPath, [script])
  try {
    // With a retry timer left behind, the process would live for retry_backoff_ms (10 minutes).
    const [code] = (await once(embedder.child, 'exit')) as [number | null]
    expect(code, embedder.output()).toBe(0)
    expect(embedder.output()).toMatch(/closed .*"spooled_records":2/)
  } finally {
    await embedder.stop('SIGKILL')
  }
})
