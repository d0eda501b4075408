// 9. Deadline-aware dynamic batching: models/digits_wide.onnx (two 1024-unit layers:
// one row reads every weight, 32 rows read them once) served with and without
// `batching:` on the same gateway, under the same closed-loop load. Every request has a
// 20 ms budget; a request the gateway could not answer in it is a 504 (a deadline miss).
import { closedLoop } from '../lib/load.ts'
import { digitsRow, nativeBody } from '../lib/payloads.ts'
import { Rows, countStatus, headline, ok2xx, repeat, target, type Scenario } from '../lib/scenario.ts'
import { model, specserveConfig, startSpecserve } from '../lib/servers.ts'
import type { LoadResult } from '../lib/types.ts'

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

function metrics(r: LoadResult, reference: LoadResult): Record<string, number | undefined> {
  return {
    ...headline(r, reference),
    p999: r.latency?.p999,
    miss: (r.requests - ok2xx(r)) / r.requests,
    late_504: countStatus(r, 504) / r.requests,
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
        const run = (name: string): Promise<LoadResult> =>
          closedLoop({ url: `${server.url}/v1/ensembles/${name}/predict`, body, connections: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS })
        const plain = await run('unbatched')
        rows.add('unbatched', 'digits_wide, one session.run per request (in the workers)', plain, metrics(plain, plain))
        const before = await batchingOf(server.url, 'wide-batched')
        const batched = await run('batched')
        const after = await batchingOf(server.url, 'wide-batched')
        // Warm-up included: the description counts every run since start; the ratio is what matters.
        const requests = after.batched_requests - before.batched_requests + (after.runs - before.runs - (after.batches - before.batches))
        rows.add('batched', `batching: { max_batch: ${MAX_BATCH}, max_queue_delay_ms: ${MAX_QUEUE_DELAY_MS} }`, batched, {
          ...metrics(batched, plain),
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
        target('batched throughput ≥ 2× unbatched', 'rps_ratio', gain, '>=', 2, () =>
          'the batches stayed small: with fewer requests waiting than max_batch, a batch goes after max_queue_delay_ms or when its ' +
            'earliest deadline needs it to; see mean_batch. A longer max_queue_delay_ms or more connections would fill them.',
        ),
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
      ],
    }
  },
}
