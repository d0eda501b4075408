// Kafka unreachable from the start (wrong address, broker not up yet): the real gateway
// process still starts and serves, spools every record, and says so in /readyz and its log.
import { readFileSync } from 'node:fs'
import { beforeAll, expect, it } from 'vitest'
import { freePort } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { eventually, predict, serve, writeConfig } from './serve.ts'

let dir: string

beforeAll(() => {
  dir = tempDir('specserve-unreachable-')
})

it('starts, serves and spools when no broker answers, and reports it', { timeout: 90_000 }, async () => {
  // A port nothing listens on: every connection is refused.
  const config = await writeConfig(dir, `127.0.0.1:${await freePort()}`)
  const gateway = await serve(config)
  try {
    for (let i = 0; i < 10; i++) expect((await predict(gateway.url, `u-${i}`, i)).status).toBe(200)
    const ready = await eventually('records spooled', gateway.readyz, (r) => r.body.output?.kafka.spooled_records === 10)
    expect(ready.status).toBe(200)
    expect(ready.body.ready).toBe(true)
    expect(ready.body.output!.kafka).toMatchObject({ state: 'spooling', dropped: 0, published: 0, last_error: expect.any(String) })
    const lines = readFileSync(ready.body.output!.kafka.spool_file, 'utf8').trim().split('\n')
    expect(lines.map((l) => (JSON.parse(l.slice(l.indexOf('\t') + 1)) as { id: string }).id)).toEqual(Array.from({ length: 10 }, (_, i) => `u-${i}`))
    expect(gateway.proc.output()).toContain('serving records not acknowledged by kafka: spooling them to disk')
  } finally {
    expect(await gateway.proc.stop('SIGTERM')).toBe(0)
  }
})
