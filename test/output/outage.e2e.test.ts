// The real `specserve serve` process against a real broker that goes away: predicts keep
// succeeding, records spool to disk, and once the broker is back every record arrives,
// in order per key, and the spool is gone. Then SIGTERM under load: nothing acknowledged
// is lost, whether the broker is up (flushed) or down (left in the spool, replayed by the
// next start).
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../temp-dirs.ts'
import { consumeUntil, startBroker, type Broker, type TextMessage } from './broker.ts'
import { eventually, load, serve, writeConfig, type Issued } from './serve.ts'

const TOPIC = 'specserve.records'
let broker: Broker
let dir: string

beforeAll(async () => {
  broker = await startBroker()
  dir = tempDir('specserve-outage-')
})

afterAll(async () => {
  await broker?.destroy()
})

const idsOf = (messages: readonly TextMessage[]): string[] => messages.map((m) => (JSON.parse(m.value) as { id: string }).id)

/** Waits until every acknowledged predict's record is on the topic; returns the messages read. */
async function recordsFor(acknowledged: readonly Issued[], timeoutMs = 90_000): Promise<TextMessage[]> {
  const missing = new Set(acknowledged.map((i) => i.id))
  let read = 0
  return consumeUntil(broker.bootstrap, TOPIC, (got) => {
    // Only the messages new since the last call: parsing all of them at each arrival was
    // quadratic (seconds of a blocked event loop for a few thousand records).
    for (const id of idsOf(got.slice(read))) missing.delete(id)
    read = got.length
    return missing.size === 0
  }, timeoutMs)
}

describe('broker outage', () => {
  it('keeps predicts succeeding, spools, then delivers every record in order per key and removes the spool', { timeout: 240_000 }, async () => {
    const config = await writeConfig(join(dir, 'outage'), broker.bootstrap)
    const gateway = await serve(config)
    try {
      const traffic = load(gateway.url, 'outage', 1, 20)
      await eventually('records published before the outage', gateway.readyz, (r) => (r.body.output?.kafka.published ?? 0) >= 10)
      await broker.stop({ kill: true })
      const during = await eventually('sink spooling', gateway.readyz, (r) => r.body.output?.kafka.state === 'spooling' && r.body.output.kafka.spooled_records > 10)
      expect(during.status).toBe(200) // Kafka down does not make the gateway unready
      expect(existsSync(during.body.output!.kafka.spool_file)).toBe(true)
      await broker.start()
      await eventually('sink publishing again', gateway.readyz, (r) => r.body.output?.kafka.state === 'connected')
      const issued = await traffic.stop()

      expect(issued.length).toBeGreaterThan(50)
      expect(issued.filter((i) => i.status !== 200)).toEqual([])
      const messages = await recordsFor(issued)
      const ids = idsOf(messages)
      expect(new Set(ids).size).toBe(issued.length)
      expect(ids.filter((id) => !id.startsWith('outage-'))).toEqual([])
      // Order per key: the first arrival of each id follows the order the predicts were issued.
      for (const ensemble of ['cancer', 'wine']) {
        const expected = issued.filter((i) => i.ensemble === ensemble).map((i) => i.id)
        const arrived = [...new Set(messages.filter((m) => m.key === ensemble).map((m) => (JSON.parse(m.value) as { id: string }).id))]
        expect(arrived).toEqual(expected)
      }
      const after = await eventually('spool replayed', gateway.readyz, (r) => r.body.output?.kafka.spooled_records === 0)
      expect(existsSync(after.body.output!.kafka.spool_file)).toBe(false)
      expect(after.body.output!.kafka.dropped).toBe(0)
      expect(gateway.proc.output()).toContain('serving records not acknowledged by kafka: spooling them to disk')
    } finally {
      expect(await gateway.proc.stop('SIGTERM')).toBe(0)
    }
  })
})

describe('SIGTERM during load', () => {
  it('flushes every acknowledged predict to Kafka before exiting', { timeout: 120_000 }, async () => {
    const config = await writeConfig(join(dir, 'flush'), broker.bootstrap)
    const gateway = await serve(config)
    const traffic = load(gateway.url, 'flush', 8, 0)
    await eventually('load running', gateway.readyz, (r) => (r.body.output?.kafka.published ?? 0) >= 200)
    const code = await gateway.proc.stop('SIGTERM')
    const acknowledged = (await traffic.stop()).filter((i) => i.status === 200)
    expect(code, gateway.proc.output()).toBe(0)
    expect(acknowledged.length).toBeGreaterThan(200)
    await recordsFor(acknowledged)
    expect(gateway.proc.output()).toContain('serving records flushed')
  })

  it('leaves what it cannot send in the spool, and the next start replays it', { timeout: 240_000 }, async () => {
    const config = await writeConfig(join(dir, 'spool'), broker.bootstrap, 'shutdown_grace_ms: 1000')
    const first = await serve(config)
    const traffic = load(first.url, 'spool', 8, 0)
    await eventually('load running', first.readyz, (r) => (r.body.output?.kafka.published ?? 0) >= 100)
    await broker.stop({ kill: true })
    const spooling = await eventually('sink spooling', first.readyz, (r) => (r.body.output?.kafka.spooled_records ?? 0) >= 100)
    expect(await first.proc.stop('SIGTERM')).toBe(0)
    const acknowledged = (await traffic.stop()).filter((i) => i.status === 200)
    expect(first.proc.output()).toContain('serving records left in the spool for the next start')
    expect(existsSync(spooling.body.output!.kafka.spool_file)).toBe(true)

    await broker.start()
    const second = await serve(config)
    try {
      await recordsFor(acknowledged)
      await eventually('spool replayed', second.readyz, (r) => r.body.output?.kafka.spooled_records === 0)
      expect(existsSync(spooling.body.output!.kafka.spool_file)).toBe(false)
      expect(second.proc.output()).toContain('replaying serving records spooled by a previous run')
    } finally {
      expect(await second.proc.stop('SIGTERM')).toBe(0)
    }
  })
})
