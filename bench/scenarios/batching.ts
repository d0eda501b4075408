// 9. Deadline-aware dynamic batching: models/digits_wide.onnx (two 1024-unit layers:
// one row reads every weight, 32 rows read them once) served with and without
// `batching:` on the same gateway, under the same closed-loop load. Every request has a
// 20 ms budget; a request the gateway could not answer in it is a 504 (a deadline miss).
import { availableParallelism } from 'node:os'
import { interleavedClosedLoop } from '../lib/load.ts'
import { digitsRow, nativeBody } from '../lib/payloads.ts'
import { Rows, countStatus, headline, ok2xx, repeat, target, type Scenario } from '../lib/scenario.ts'
import { model, specserveConfig, startSpecserve } from '../lib/servers.ts'
import type { CpuPerRequest, LoadResult } from '../lib/types.ts'

const BUDGET_MS = 20
const MAX_BATCH = 32
const MAX_QUEUE_DELAY_MS = 2

interface Batching {
  runs: number
  batches: number
  batched_requests: number
}

/** The batching figures the model's description reports (GET /v1/models/{name}). */
async function batchingOf(url: string, name: string): Promise<Batching> {
  const res = await fetch(`${url}/v1/models/${name}`)
  return ((await res.json()) as { batching: Batching }).batching
}

function metrics(r: LoadResult, reference: LoadResult, cpu: CpuPerRequest | undefined): Record<string, number | undefined> {
  return {
    ...headline(r, reference),
    p999: r.latency?.p999,
    miss: (r.requests - ok2xx(r)) / r.requests,
    late_504: countStatus(r, 504) / r.requests,
    loop_cpu_us: cpu?.main,
    other_cpu_us: cpu?.all === undefined || cpu.main === undefined ? undefined : cpu.all - cpu.main,
  }
}

export const batching: Scenario = {
  id: 'batching',
  title: '9. Dynamic batching: a wide MLP with and without deadline-aware batching',
  async run(ctx) {
    const wide = { kind: 'onnx', path: model('digits_wide.onnx'), placement: 'worker' }
    const budget = { default: BUDGET_MS, max: BUDGET_MS }
    const server = await startSpecserve(
      'batching',
      specserveConfig(
        { wide, 'wide-batched': { ...wide, placement: undefined, batching: { max_batch: MAX_BATCH, max_queue_delay_ms: MAX_QUEUE_DELAY_MS } } },
        {
          unbatched: { strategy: 'deadline-fallback', models: ['wide'], budget_ms: budget },
          batched: { strategy: 'deadline-fallback', models: ['wide-batched'], budget_ms: budget },
        },
      ),
      { dir: ctx.dir },
    )
    const rows = new Rows()
    const body = nativeBody(undefined, digitsRow)
    try {
      await repeat(ctx, 'batching', async () => {
        // The two take turns in slices over the same minutes; CPU per request of the gateway (its event loop, and the rest: the worker).
        const on = (name: string) => ({ url: `${server.url}/v1/ensembles/${name}/predict`, body, connections: ctx.connections, pids: [server.proc.child.pid] })
        const before = await batchingOf(server.url, 'wide-batched')
        const [a, b] = await interleavedClosedLoop({ targets: [on('unbatched'), on('batched')], durationS: ctx.durationS, warmupS: ctx.warmupS, sliceS: ctx.sliceS })
        const after = await batchingOf(server.url, 'wide-batched')
        const [plain, batched] = [a!.result, b!.result]
        rows.add('unbatched', 'digits_wide, one session.run per request (in the workers)', plain, metrics(plain, plain, a!.cpu[0]))
        // Warm-up included: the description counts every run since start; the ratio is what matters.
        const requests = after.batched_requests - before.batched_requests + (after.runs - before.runs - (after.batches - before.batches))
        rows.add('batched', `batching: { max_batch: ${MAX_BATCH}, max_queue_delay_ms: ${MAX_QUEUE_DELAY_MS} }`, batched, {
          ...metrics(batched, plain, b!.cpu[0]),
          mean_batch: requests / Math.max(1, after.runs - before.runs),
        })
      })
    } finally {
      await server.stop()
    }
    const gain = rows.summary('batched', 'rps_ratio')
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'the same model without batching on the same gateway, same load, same run',
      variants: rows.variants(),
      targets: [
        target('batched throughput ≥ 2× unbatched', 'rps_ratio', gain, '>=', 2, () => {
          const m = (row: string, metric: string) => rows.summary(row, metric)?.median
          const f = (v: number | undefined) => (v === undefined ? '?' : v.toFixed(1))
          const meanBatch = m('batched', 'mean_batch') ?? 0
          if (meanBatch < MAX_BATCH * 0.8) {
            return `the batches stayed small (${f(meanBatch)} requests per run of ${MAX_BATCH}): with fewer requests waiting than max_batch, a batch goes after max_queue_delay_ms or when its earliest deadline needs it to. A longer max_queue_delay_ms or more connections would fill them.`
          }
          const cpu = (row: string) => (m(row, 'loop_cpu_us') ?? NaN) + (m(row, 'other_cpu_us') ?? NaN)
          const cores = ((m('batched', 'rps') ?? NaN) * cpu('batched')) / 1e6
          const loopMostly = (m('batched', 'loop_cpu_us') ?? 0) > (m('batched', 'other_cpu_us') ?? Infinity)
          return (
            `the batches were full (${f(meanBatch)} requests per run of ${MAX_BATCH}): per request, measured from /proc, the gateway's other threads ` +
            `(the workers, libuv, GC) used ${f(m('unbatched', 'other_cpu_us'))} µs unbatched and ${f(m('batched', 'other_cpu_us'))} µs batched, the whole gateway ` +
            `${f(cpu('unbatched'))} and ${f(cpu('batched'))} µs (unbatched used ${(cpu('unbatched') / cpu('batched')).toFixed(2)}× as much). At the batched rate that is ` +
            `${cores.toFixed(2)} of the box's ${availableParallelism()} cores; the rest is left to the load generator (autocannon, on the same box) and the kernel's ` +
            'network stack, so req/s cannot gain what CPU does.' +
            (loopMostly ? " The event loop (HTTP, JSON, the hand-off) is now most of the gateway's cost." : '') +
            ' A bigger model, where a run costs more than the request around it, or a load generator on another machine, would show more of the gain.'
          )
        }),
        target(`batched p99 ≤ budget (${BUDGET_MS} ms)`, 'p99', rows.summary('batched', 'p99'), '<=', BUDGET_MS, () =>
          'requests waited for a busy worker behind full batches: the pool answers at its capacity and the rest queue.',
        ),
        target('batched deadline misses < 0.1%', 'miss', rows.summary('batched', 'miss'), '<=', 0.001, () =>
          'some requests found no time left when a worker became free (WOULD_MISS_DEADLINE or 504): the closed loop keeps more requests waiting than one batch per run serves.',
        ),
      ],
      notes: [
        `Closed loop, ${ctx.connections} connections, budget ${BUDGET_MS} ms; a miss is any non-2xx answer (504 when no model answered in the budget).`,
        'digits_wide: StandardScaler + MLP (1024, 1024) on the digits data set, 4.5 MB; one row ~0.2 ms, 32 rows ~0.5 ms in onnxruntime (models/README.md).',
        'mean_batch: requests per session.run during the measured run (and its warm-up), from GET /v1/models/wide-batched.',
        `The two rows take turns in ${ctx.sliceS}-s slices over the same minutes. CPU columns: µs per request from /proc over each row's own slices: the gateway's main thread (the event loop), and its other threads (the inference workers, libuv, GC).`,
      ],
    }
  },
}
