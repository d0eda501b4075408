// 6. Serving records published to Kafka (output.kafka) vs not, on the same model and
// load. A real single-node broker from scripts/kafka.sh, in the run's temp dir.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { nativeBody } from '../lib/payloads.ts'
import { interleavedClosedLoop } from '../lib/load.ts'
import { onExit, root, run } from '../lib/processes.ts'
import { Rows, headline, notRun, repeat, target, type BenchContext, type Scenario } from '../lib/scenario.ts'
import { startAll, startSpecserve, type Server } from '../lib/servers.ts'
import type { LoadResult } from '../lib/types.ts'
import { singleModelConfig } from './overhead.ts'

const TOPIC = 'specserve.bench'

interface Measured {
  readonly result: LoadResult
  readonly gatewayUs: number | undefined
  /** The gateway's event loop alone (what saturates first): the producer thread's work is in gatewayUs only. */
  readonly loopUs: number | undefined
  readonly brokerUs: number | undefined
}

/** Whether this tree's config accepts an output.kafka section (the Kafka issue has landed). */
async function kafkaConfigAccepted(dir: string): Promise<string | null> {
  if (!existsSync(join(root, 'src', 'output', 'index.ts'))) return 'src/output (the Kafka publisher) does not exist yet'
  const file = join(dir, 'kafka-check.yaml')
  writeFileSync(file, stringify({ ...singleModelConfig(), output: { kafka: { brokers: ['127.0.0.1:9092'], topic: TOPIC } } }))
  try {
    await run(process.execPath, [join(root, 'src', 'cli.ts'), 'validate', file])
    return null
  } catch (err) {
    return `the config does not accept output.kafka yet: ${String((err as Error).message).split('\n')[0]}`
  }
}

/** The broker's pid (scripts/kafka.sh keeps it in its dir), for its CPU per record. */
function brokerPid(ctx: BenchContext): number | undefined {
  try {
    return Number(readFileSync(join(brokerDir(ctx), 'pid'), 'utf8').trim()) || undefined
  } catch {
    return undefined
  }
}

const brokers = new WeakMap<BenchContext, Promise<string>>()
const brokerDir = (ctx: BenchContext): string => join(ctx.dir, 'kafka')
const script = join(root, 'scripts', 'kafka.sh')

/** One broker per bench run, started on first use; its address (the stream scenario shares it). */
export function broker(ctx: BenchContext): Promise<string> {
  let started = brokers.get(ctx)
  if (!started) {
    ctx.log('kafka: starting a broker (scripts/kafka.sh)')
    started = run('bash', [script, 'start', '--dir', brokerDir(ctx), '--port', '0']).then((out) => out.trim().split('\n').pop() as string)
    // The broker is a daemon, not our child: if the bench dies, stop it on the way out.
    onExit(() => {
      if (brokers.has(ctx)) spawnSync('bash', [script, 'clean', '--dir', brokerDir(ctx)], { stdio: 'ignore' })
    })
    brokers.set(ctx, started)
  }
  return started
}

/** The publisher's own counters from GET /metrics (Prometheus text), to show records really reached Kafka. */
async function publisherCounters(url: string): Promise<string> {
  try {
    const res = await request(`${url}/metrics`)
    const text = await res.body.text()
    // batches: produce requests, so published / batches is the records each carried.
    const found = [...text.matchAll(/^specserve_output_(?:(published|spooled|dropped|buffered)_records|(batches))(?:_total)?(?:\{\})? (\S+)$/gm)].map((m) => `${m[1] ?? m[2]} ${m[3]}`)
    return found.length ? `publisher counters after the runs: ${found.join(', ')}` : 'publisher counters: not exposed on /metrics in this build'
  } catch (err) {
    return `publisher counters: /metrics unreachable (${(err as Error).message})`
  }
}

export const kafka: Scenario = {
  id: 'kafka',
  title: '6. Kafka publishing on vs off',
  async cleanup(ctx) {
    const started = brokers.get(ctx)
    if (!started) return
    brokers.delete(ctx)
    await started.catch(() => '') // never clean a broker halfway through its start
    await run('bash', [script, 'clean', '--dir', brokerDir(ctx)]).catch(() => '')
  },
  async run(ctx) {
    const missing = await kafkaConfigAccepted(ctx.dir)
    if (missing) return notRun(this.id, this.title, missing)
    let address: string
    try {
      address = await broker(ctx)
    } catch (err) {
      return notRun(this.id, this.title, `no Kafka broker: ${String((err as Error).message).split('\n')[0]}`)
    }
    const servers: Server[] = []
    const rows = new Rows()
    let counters: string
    try {
      const output = (extra: Record<string, unknown> = {}) => ({ kafka: { brokers: [address], topic: TOPIC, spool_dir: join(ctx.dir, `spool-${Object.keys(extra).join('') || 'default'}`), ...extra } })
      const [off, on, lz4, thread] = await startAll(
        startSpecserve('kafka-off', singleModelConfig(), { dir: ctx.dir }),
        startSpecserve('kafka-on', { ...singleModelConfig(), output: output() }, { dir: ctx.dir }),
        startSpecserve('kafka-lz4', { ...singleModelConfig(), output: output({ compression: 'lz4' }) }, { dir: ctx.dir }),
        startSpecserve('kafka-thread', { ...singleModelConfig(), output: output({ producer_thread: true }) }, { dir: ctx.dir }),
      )
      servers.push(off, on, lz4, thread)
      const pid = brokerPid(ctx)
      await repeat(ctx, 'kafka', async () => {
        // Off, on, lz4 and the producer thread interleaved, so they share the box's same minutes; CPU per request of the gateway and the broker.
        const loadOn = (server: Server) => ({ url: `${server.url}/v1/ensembles/logreg/predict`, body: nativeBody(), connections: ctx.connections, pids: [server.proc.child.pid, pid] })
        const runs = await interleavedClosedLoop({ targets: [loadOn(off), loadOn(on), loadOn(lz4), loadOn(thread)], durationS: ctx.durationS, warmupS: ctx.warmupS, sliceS: ctx.sliceS })
        const [a, b, c, d] = runs.map(({ result, cpu }) => ({ result, gatewayUs: cpu[0]?.all, loopUs: cpu[0]?.main, brokerUs: cpu[1]?.all })) as [Measured, Measured, Measured, Measured]
        // The broker's own background (its CPU per second of the off slices, where nothing is published) is not the records' cost.
        const idlePerS = a.brokerUs === undefined ? undefined : (a.brokerUs * a.result.requests) / a.result.durationS
        const perRecord = (m: Measured) => (m.brokerUs === undefined || idlePerS === undefined ? undefined : m.brokerUs - (idlePerS * m.result.durationS) / m.result.requests)
        const cpu = (m: Measured) => ({ gateway_cpu_us: m.gatewayUs, loop_cpu_us: m.loopUs, broker_cpu_us: m.brokerUs })
        rows.add('publishing off', 'no output section', a.result, { ...headline(a.result, a.result), ...cpu(a) })
        rows.add('publishing on', `output.kafka to ${TOPIC} (acks: all, defaults)`, b.result, { ...headline(b.result, a.result), ...cpu(b), broker_record_us: perRecord(b) })
        rows.add('publishing on, lz4', 'the same with compression: lz4', c.result, { ...headline(c.result, a.result), ...cpu(c), broker_record_us: perRecord(c) })
        rows.add('publishing on, producer thread', 'the same with producer_thread: true (the Kafka client on a thread of its own)', d.result, { ...headline(d.result, a.result), ...cpu(d), broker_record_us: perRecord(d) })
      })
      const more = async (name: string, server: Server) => `${name}: ${(await publisherCounters(server.url)).replace(/^publisher counters after the runs: /, '')}`
      counters = `${await publisherCounters(on.url)}; ${await more('lz4', lz4)}; ${await more('producer thread', thread)}`
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
      // A full run stops it, so an idle JVM does not share the cores with the scenarios between;
      // a quick run (a smoke test: no figure counts) keeps it for stream mode's, saving a start.
      if (!ctx.quick) await this.cleanup?.(ctx)
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'the same config without output.kafka, same run',
      variants: rows.variants(),
      targets: [
        target('throughput with publishing ≥ 95% of without', 'rps_ratio', rows.summary('publishing on', 'rps_ratio'), '>=', 0.95, () => {
          const us = (row: string, metric: string) => rows.summary(row, metric)?.median
          const [off, on] = [us('publishing off', 'gateway_cpu_us'), us('publishing on', 'gateway_cpu_us')]
          const [loopOff, loopOn] = [us('publishing off', 'loop_cpu_us'), us('publishing on', 'loop_cpu_us')]
          const broker = us('publishing on', 'broker_record_us')
          const [threadRatio, threadLoop] = [us('publishing on, producer thread', 'rps_ratio'), us('publishing on, producer thread', 'loop_cpu_us')]
          const f = (v: number | undefined) => (v === undefined ? '?' : v.toFixed(1))
          return (
            `on these 2 cores the gateway, the load generator and the broker (a JVM, acks: all) share the CPU. Per request, measured from /proc: ` +
            `the gateway's event loop used ${f(loopOff)} µs without publishing and ${f(loopOn)} µs with it (the record's JSON and its digest, and the Kafka client's batch encoding and socket writes), ` +
            `all its threads ${f(off)} and ${f(on)} µs, ` +
            `and the broker ${f(broker)} µs per record over its idle background, CPU the load generator and the gateway no longer get. A broker on its own host takes the broker's share away, ` +
            `not the gateway's own publishing work. With the Kafka client on a thread of its own (producer_thread: true) the throughput ratio was ${threadRatio === undefined ? '?' : `${threadRatio.toFixed(2)}×`} and the event loop ${f(threadLoop)} µs per request (${f(loopOn)} without the thread): ` +
            `the thread's core is the load generator's and the broker's on this box (docs/output.md, "The producer thread").`
          )
        }),
      ],
      notes: [`Broker: scripts/kafka.sh (single-node KRaft) at ${address}. Closed loop, ${ctx.connections} connections. CPU columns: µs per request over each row's own slices and the 300 ms that settle after each, from /proc (all threads; the event loop's column, its thread alone: with producer_thread the Kafka client runs on a thread of its own, docs/output.md); the broker's with publishing off is its idle background, and "broker CPU µs per record over idle" is the broker's CPU in a row's slices less that background over as many seconds, per request.`, `${counters}.`],
    }
  },
}
