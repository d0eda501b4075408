// 13. Stream mode (Kafka in): predict requests on a 4-partition input topic, scored and
// answered on the output topic, end to end, by one gateway instance and by two in one
// consumer group (scripts/kafka.sh's broker, shared with scenario 6). The messages are
// produced once every member has its partitions, faster than they are scored; the rate
// is taken from the first answer to the last, from the members' own answered counters.
import { join } from 'node:path'
import { Admin, Producer, stringSerializers } from '@platformatic/kafka'
import { request } from 'undici'
import { row } from '../lib/payloads.ts'
import { Rows, notRun, repeat, target, type BenchContext, type Scenario } from '../lib/scenario.ts'
import { startAll, startSpecserve, type Server } from '../lib/servers.ts'
import type { LoadResult } from '../lib/types.ts'
import { broker, kafka } from './kafka.ts'
import { singleModelConfig } from './overhead.ts'

const PARTITIONS = 4

interface StreamStatus {
  answered: number
  dead_lettered: number
  assignments: { partitions: number[] }[]
}

async function streamStatus(server: Server): Promise<StreamStatus> {
  const res = await request(`${server.url}/readyz`)
  const body = (await res.body.json()) as { output?: { stream?: StreamStatus } }
  return body.output?.stream ?? { answered: 0, dead_lettered: 0, assignments: [] }
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100))

async function produce(address: string, topic: string, count: number): Promise<void> {
  const producer = new Producer({ clientId: 'specserve-bench-requests', bootstrapBrokers: [address], serializers: stringSerializers })
  try {
    for (let sent = 0; sent < count; sent += 1000) {
      const n = Math.min(1000, count - sent)
      const messages = Array.from({ length: n }, (_, i) => ({ topic, key: `k${(sent + i) % 64}`, value: JSON.stringify({ id: `m${sent + i}`, ensemble: 'logreg', inputs: { input: [row] } }) }))
      await producer.send({ messages })
    }
  } finally {
    await producer.close()
  }
}

/** One run: `members` gateways in one group score `count` messages; their rate from first answer to last. */
async function streamRun(ctx: BenchContext, address: string, members: number, rep: number, count: number): Promise<LoadResult> {
  const topic = `specserve.stream.bench.${members}.${rep}`
  const config = (i: number): Record<string, unknown> => ({
    ...singleModelConfig(),
    output: { kafka: { brokers: [address], topic: 'specserve.stream.bench.records', spool_dir: join(ctx.dir, `stream-spool-${members}-${rep}-${i}`), stream: { enabled: true, input_topic: topic, group_id: `bench-${topic}` } } },
  })
  // The topic must exist before the members join, or they subscribe to nothing.
  const admin = new Admin({ clientId: 'specserve-bench-admin', bootstrapBrokers: [address] })
  try {
    await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 })
  } finally {
    await admin.close()
  }
  const servers = await startAll(...Array.from({ length: members }, (_, i) => startSpecserve(`stream-${members}-${i}`, config(i), { dir: ctx.dir })))
  try {
    // Every member has its share of the partitions before a message is produced.
    for (let waited = 0; ; waited += 100) {
      const owned = (await Promise.all(servers.map(streamStatus))).map((s) => s.assignments[0]?.partitions.length ?? 0)
      if (owned.every((n) => n > 0) && owned.reduce((a, b) => a + b) === PARTITIONS) break
      if (waited > 60_000) throw new Error(`stream members did not split ${PARTITIONS} partitions: ${owned.join(', ')}`)
      await tick()
    }
    await produce(address, topic, count)
    let first: { at: number; done: number } | null = null
    for (let waited = 0; ; waited += 100) {
      const done = (await Promise.all(servers.map(streamStatus))).reduce((n, s) => n + s.answered + s.dead_lettered, 0)
      const at = performance.now()
      if (first === null && done > 0) first = { at, done }
      if (done >= count && first) {
        const seconds = Math.max((at - first.at) / 1000, 0.001)
        const rate = (done - first.done) / seconds
        return {
          tool: `bench/scenarios/stream.ts (stream-mode, ${members} member${members > 1 ? 's' : ''}, ${PARTITIONS} partitions)`,
          loop: 'closed',
          connections: members,
          durationS: seconds,
          warmupS: 0,
          offeredRate: null,
          sentRate: rate,
          throughput: rate,
          requests: done,
          statuses: { answered: done },
          errors: 0,
          latency: null,
        }
      }
      if (waited > 300_000) throw new Error(`stream mode answered ${done} of ${count} messages in 5 minutes`)
      await tick()
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
}

export const stream: Scenario = {
  id: 'stream',
  title: '13. Stream mode: Kafka in, scored, Kafka out',
  cleanup: (ctx) => kafka.cleanup!(ctx),
  async run(ctx) {
    let address: string
    try {
      address = await broker(ctx)
    } catch (err) {
      return notRun(this.id, this.title, `no Kafka broker: ${String((err as Error).message).split('\n')[0]}`)
    }
    // Enough messages for the run to last about the load duration at a few thousand per second.
    const count = Math.max(5000, Math.round(5000 * ctx.durationS))
    const rows = new Rows()
    try {
      await repeat(ctx, 'stream', async (rep) => {
        const one = await streamRun(ctx, address, 1, rep, count)
        const two = await streamRun(ctx, address, 2, rep, count)
        rows.add('one instance', `${count} messages, ${PARTITIONS} partitions, the single-model ensemble`, one, { rps: one.throughput, rps_ratio: 1 })
        rows.add('two instances, one group', 'the same, two gateway processes sharing the partitions', two, { rps: two.throughput, rps_ratio: two.throughput / one.throughput })
      })
    } finally {
      await this.cleanup?.(ctx)
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'one instance, same run',
      variants: rows.variants(),
      targets: [
        target('two instances in one group answer at least as fast as one', 'rps_ratio', rows.summary('two instances, one group', 'rps_ratio'), '>=', 1.0, () =>
          'both gateways, the broker and the producer share the same 2 cores: a second member adds a second event loop and inference worker but no CPU.',
        ),
      ],
      notes: [
        `Messages are produced once every member owns its partitions; the rate runs from the first answer to the last (answers and dead letters), read from each member's /readyz.`,
        'req/s here is messages per second, end to end (input topic → scored → output topic acknowledged); serving records are published too.',
      ],
    }
  },
}
