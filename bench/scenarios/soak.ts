// 10. Soak: the demo's mix of ensembles at about a fifth of the gateway's capacity for
// minutes (full run), each ensemble at its own fixed rate and budget. A deadline miss is
// an answer that is not a 2xx, or one whose own elapsed_ms exceeds its budget; the
// gateway's resident memory is sampled throughout and must stay flat.
import { readFileSync } from 'node:fs'
import { openLoop } from '../lib/load.ts'
import { digitsRow, nativeBody } from '../lib/payloads.ts'
import { Rows, target, type Scenario } from '../lib/scenario.ts'
import { model, placementOf, specserveConfig, startSpecserve } from '../lib/servers.ts'
import type { LoadResult } from '../lib/types.ts'

const SOAK_S = 180
const QUICK_SOAK_S = 3
const CAPACITY_SHARE = 0.2

interface Mix {
  readonly ensemble: string
  readonly share: number
  readonly budgetMs: number
  readonly body: string
}

const wineRow = JSON.parse(readFileSync(new URL('../../models/manifest.json', import.meta.url), 'utf8')).tasks.wine.samples[0] as number[]

const MIX: readonly Mix[] = [
  { ensemble: 'cancer', share: 0.6, budgetMs: 50, body: nativeBody() },
  { ensemble: 'cancer-straggler', share: 0.2, budgetMs: 20, body: nativeBody() },
  { ensemble: 'wine', share: 0.1, budgetMs: 50, body: nativeBody(undefined, wineRow) },
  { ensemble: 'digits', share: 0.1, budgetMs: 50, body: nativeBody(undefined, digitsRow) },
]

/** The demo's models and ensembles (examples/demo.yaml), on loopback. */
function demoConfig(): Record<string, unknown> {
  const onnx = (file: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ kind: 'onnx', path: model(file), ...extra })
  const budget = (ms: number): Record<string, number> => ({ default: ms, max: ms })
  return specserveConfig(
    {
      'cancer-logreg': onnx('cancer_logreg.onnx'),
      'cancer-mlp': onnx('cancer_mlp.onnx'),
      'cancer-slow': onnx('cancer_slow.onnx', { dedicated_workers: 1 }),
      'wine-logreg': onnx('wine_logreg.onnx'),
      'wine-tree': onnx('wine_tree.onnx'),
      'wine-knn': onnx('wine_knn.onnx'),
      'digits-logreg': onnx('digits_logreg.onnx'),
      'digits-mlp': onnx('digits_mlp.onnx'),
      'digits-rf': onnx('digits_rf.onnx'),
    },
    {
      cancer: { strategy: 'deadline-fallback', models: ['cancer-logreg', 'cancer-mlp'], budget_ms: budget(50) },
      'cancer-straggler': { strategy: 'deadline-fallback', models: ['cancer-slow', 'cancer-logreg'], budget_ms: budget(20) },
      wine: { strategy: { name: 'majority-vote', quorum: 'majority', on_no_majority: 'plurality' }, models: ['wine-logreg', 'wine-tree', 'wine-knn'], budget_ms: budget(50) },
      digits: { strategy: { name: 'majority-vote', mode: 'soft' }, models: ['digits-mlp', 'digits-logreg', 'digits-rf'], budget_ms: budget(50), select: { policy: 'adaptive', accuracy_target: 0.995 } },
    },
  )
}

/** Resident memory of a process, MB (Linux /proc); undefined where unavailable. */
function rssMb(pid: number | undefined): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return kb ? Number(kb) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** Misses by the gateway's own clock: not answered 2xx, or answered after the budget (the open loop counts both: readBodies with missAfterMs). */
const missRate = (r: LoadResult): number => r.serverMissRate ?? NaN

/** The ensembles' p99.9 in ms, lowest–highest. */
function p999Range(rows: Rows): string {
  const values = MIX.map((m) => rows.summary(m.ensemble, 'p999')?.median).filter((v): v is number => v !== undefined)
  return values.length === 0 ? '–' : `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`
}

export const soak: Scenario = {
  id: 'soak',
  title: '10. Soak: the demo mix at a fifth of capacity for minutes',
  async run(ctx) {
    const seconds = ctx.quick ? QUICK_SOAK_S : SOAK_S
    const capacity = ctx.shared.get('specserve-max-rps') ?? 5000
    const total = Math.round(CAPACITY_SHARE * capacity)
    const server = await startSpecserve('soak', demoConfig(), { dir: ctx.dir })
    const rss: number[] = []
    const sampler = setInterval(() => {
      const mb = rssMb(server.proc.child.pid)
      if (mb !== undefined) rss.push(mb)
    }, 1000)
    const rows = new Rows()
    let slow: string | undefined
    try {
      ctx.log(`soak: ${total} req/s for ${seconds} s`)
      const runs = await Promise.all(
        MIX.map((m) =>
          openLoop({
            url: `${server.url}/v1/ensembles/${m.ensemble}/predict`,
            body: m.body,
            rate: Math.max(1, Math.round(total * m.share)),
            connections: 16,
            durationS: seconds,
            warmupS: ctx.warmupS,
            missAfterMs: m.budgetMs,
            readBodies: true,
          }),
        ),
      )
      let requests = 0
      let missed = 0
      MIX.forEach((m, i) => {
        const r = runs[i]!
        requests += r.requests
        missed += missRate(r) * r.requests
        rows.add(m.ensemble, `${m.budgetMs} ms budget, ${Math.round(m.share * 100)}% of the load`, r, {
          offered: r.offeredRate ?? undefined,
          rps: r.throughput,
          p50: r.latency?.p50,
          p99: r.latency?.p99,
          p999: r.latency?.p999,
          miss_gateway: missRate(r),
          miss: r.missRate,
        })
      })
      // Memory: after the first fifth (warm) against the end, and the peak.
      const settled = rss[Math.floor(rss.length / 5)] ?? rss[0]
      const end = rss[rss.length - 1]
      rows.add('all', `${total} req/s in all, ${seconds} s`, runs[0]!, {
        offered: total,
        rps: runs.reduce((n, r) => n + r.throughput, 0),
        miss_gateway: missed / Math.max(1, requests),
        rss_settled_mb: settled,
        rss_end_mb: end,
        rss_max_mb: rss.length ? Math.max(...rss) : undefined,
        rss_growth: settled && end ? end / settled : undefined,
      })
      for (const r of runs.slice(1)) rows.add('all', '', r, {})
      slow = (await placementOf(server.url, 'cancer-slow')).reason
    } finally {
      clearInterval(sampler)
      await server.stop()
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: `the gateway's max single-model rate from scenario 1 (${Math.round(capacity)} req/s), same run`,
      variants: rows.variants(),
      targets: [
        target('deadline misses < 0.01% (all ensembles, gateway clock)', 'miss_gateway', rows.summary('all', 'miss_gateway'), '<=', 0.0001, () =>
          'the misses are decisions that came after the budget (elapsed_ms over it) and a few 504s, in short stalls that show in ' +
            `every ensemble at once (their p99.9: ${p999Range(rows)} ms): the 2 cores carry four load generators, the event loop and ` +
            'the dedicated worker that runs the straggler without pause (already 10 nice steps below the event loop: ' +
            'executors.onnx_worker_nice), so the event loop now and then waits for a core. What would close it: a core the ' +
            'straggler does not share, or a load generator on another machine.',
        ),
        target('flat memory: RSS at the end within 10% of RSS once warm', 'rss_growth', rows.summary('all', 'rss_growth'), '<=', 1.1, () =>
          'resident memory grew during the soak: a heap snapshot at the start and end (node --heapsnapshot-signal) shows what is kept.',
        ),
      ],
      notes: [
        `Four open-loop generators at once (16 connections each): ${MIX.map((m) => `${m.ensemble} ${Math.round(m.share * 100)}%`).join(', ')} of ${total} req/s (${CAPACITY_SHARE} × capacity).`,
        `The models and ensembles of examples/demo.yaml: cancer-slow in a worker of its own (${slow ?? 'its placement was not read'}), the fast members inline.`,
        'Misses by the gateway clock: non-2xx, or elapsed_ms over the budget. Client misses: answered later than the budget from the scheduled start, as the load generator (on the same 2 cores) saw it.',
        'RSS sampled every second from /proc; "settled" is the sample a fifth of the way in.',
      ],
    }
  },
}
