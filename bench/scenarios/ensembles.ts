// 2. Three embedded models under each strategy vs the single model. The three members
// are the same logistic regression loaded three times, so each run an ensemble request
// makes costs what the single model's one run does, and the ratio shows the fan-out and
// the runs each strategy needs (best-quality three, majority-vote two, deadline-fallback one).
import { interleavedClosedLoop } from '../lib/load.ts'
import { nativeBody } from '../lib/payloads.ts'
import { Rows, headline, repeat, target, type Scenario } from '../lib/scenario.ts'
import { model, placementOf, specserveConfig, startAll, startSpecserve, type PlacementInfo } from '../lib/servers.ts'
import { batchedInline } from './overhead.ts'

const budget = { default: 1000, max: 1000 }
const members = ['logreg-a', 'logreg-b', 'logreg-c']
const strategies = {
  'deadline-fallback': { strategy: 'deadline-fallback', note: 'returns as soon as the first-preferred model answers', runs: 1 },
  'majority-vote': { strategy: { name: 'majority-vote', quorum: 'majority', on_no_majority: 'plurality' }, note: 'early exit once two agree', runs: 2 },
  'best-quality': { strategy: { name: 'best-quality' }, note: 'waits for all three (no good_enough)', runs: 3 },
} as const

/** How far under the target a bound must be to say the target is out of reach (the run time is rounded to 1 µs and is wall clock). */
const BOUND_MARGIN = 0.02

/**
 * What `runs` separate runtime calls allow at best when the event loop is what saturates:
 * the single model's loop CPU per predict plus each extra run's own time, nothing else.
 */
function runBound(runs: number, oneUs: number | undefined, runUs: number, busy: number | undefined): string {
  if (runs < 2 || oneUs === undefined || !Number.isFinite(runUs) || busy === undefined) return ''
  const bound = oneUs / (oneUs + (runs - 1) * runUs)
  const timed = `A member's inline run took ${runUs.toFixed(0)} µs (median of its last 128, wall clock around the runtime call, read after the runs). `
  if (busy < 0.9) return `${timed}The event loop was ${(busy * 100).toFixed(0)}% busy in the single model's slices, so it is not alone in setting the pace here. `
  const short = bound < 0.75 - BOUND_MARGIN ? ': as separate runtime calls, short of the target however little the gateway adds around them' : ''
  return `${timed}With the event loop ${(busy * 100).toFixed(0)}% busy in the single model's slices (what saturates), ${runs} such runs per predict and nothing else added allow at most ~${bound.toFixed(2)}× the single model${short}. `
}

export const ensembles: Scenario = {
  id: 'ensembles',
  title: '2. Ensembles of 3 embedded models under each strategy vs a single model',
  async run(ctx) {
    const models = Object.fromEntries(members.map((m) => [m, { kind: 'onnx', path: model('cancer_logreg.onnx') }]))
    const ens: Record<string, unknown> = { single: { strategy: 'deadline-fallback', models: ['logreg-a'], budget_ms: budget } }
    for (const [name, s] of Object.entries(strategies)) ens[name] = { strategy: s.strategy, models: members, budget_ms: budget }
    // Opt-in, the same ensembles with every member pinned inline with batching (a member's runs of one turn stacked).
    const batchedModels = Object.fromEntries(members.map((m) => [m, batchedInline('cancer_logreg.onnx')]))
    const [server, batched] = await startAll(startSpecserve('ensembles', specserveConfig(models, ens), { dir: ctx.dir }), startSpecserve('ensembles-batching', specserveConfig(batchedModels, ens), { dir: ctx.dir }))
    const rows = new Rows()
    let placements: PlacementInfo[] = []
    try {
      await repeat(ctx, 'ensembles', async () => {
        // The single model and the three strategies interleaved on one server, so they share the box's same minutes;
        // with the event loop's CPU per request (/proc): where an ensemble's extra cost goes.
        const names = ['single', ...Object.keys(strategies)] as const
        const runAll = async (on: typeof server) => {
          const targets = names.map((name) => ({ url: `${on.url}/v1/ensembles/${name}/predict`, body: nativeBody(), connections: ctx.connections, pids: [on.proc.child.pid] }))
          const runs = await interleavedClosedLoop({ targets, durationS: ctx.durationS, warmupS: ctx.warmupS, sliceS: ctx.sliceS })
          return runs.map(({ result, cpu }) => ({ result, loop: { loop_cpu_us: cpu[0]?.main } }))
        }
        const [single, ...each] = await runAll(server)
        rows.add('single model', 'one logistic regression', single!.result, { ...headline(single!.result, single!.result), ...single!.loop })
        Object.entries(strategies).forEach(([name, s], i) => rows.add(name, `3 models; ${s.note}`, each[i]!.result, { ...headline(each[i]!.result, single!.result), ...each[i]!.loop }))
        // Opt-in batching on the event loop; each ratio against the batched single model (like against like).
        const [singleBatched, ...eachBatched] = await runAll(batched)
        rows.add('single model, batching', 'the same model pinned inline with batching: { max_batch: 32 }', singleBatched!.result, { ...headline(singleBatched!.result, singleBatched!.result), ...singleBatched!.loop })
        Object.entries(strategies).forEach(([name, s], i) =>
          rows.add(`${name}, batching`, `3 models, each pinned inline with batching; ${s.note}; ratio against the batched single model`, eachBatched[i]!.result, { ...headline(eachBatched[i]!.result, singleBatched!.result), ...eachBatched[i]!.loop }),
        )
      })
      placements = await Promise.all(members.map((m) => placementOf(server.url, m)))
    } finally {
      await Promise.all([server.stop(), batched.stop()])
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'the single-model ensemble on the same server, same run',
      variants: rows.variants(),
      targets: Object.entries(strategies).map(([name, { runs }]) =>
        target(`${name}: throughput ≥ 75% of single model`, 'rps_ratio', rows.summary(name, 'rps_ratio'), '>=', 0.75, () => {
          const [one, ens] = [rows.summary('single model', 'loop_cpu_us')?.median, rows.summary(name, 'loop_cpu_us')?.median]
          const f = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '?' : v.toFixed(1))
          const loop = (row: string) => f(rows.summary(row, 'loop_cpu_us')?.median)
          const singleRps = rows.summary('single model', 'rps')?.median
          // Loop CPU per request × requests per second: how much of its one core the event loop used.
          const busy = one !== undefined && singleRps !== undefined ? (one * singleRps) / 1e6 : undefined
          const runUs = (placements[0]?.inline_p50_ms ?? Number.NaN) * 1000
          return (
            `${placements.every((p) => p.current === 'inline') ? 'the members run inline (measured tiny)' : `the members ran ${placements.map((p) => p.current).join(', ')}`}, so the extra runs are paid on the event loop: measured from ` +
            `/proc in this run, ${f(ens)} µs of event-loop CPU per predict against ${f(one)} µs for the single model ` +
            `(+${f(one !== undefined && ens !== undefined ? ens - one : undefined)}). onnxruntime-node runs one inference at a time per thread, synchronously. ` +
            `best-quality needs all three runs; majority-vote decides on the first two that agree and drops the third before it runs, but pays for the votes ` +
            `and the dropped member's bookkeeping (this run: majority-vote ${loop('majority-vote')} µs, best-quality ${loop('best-quality')} µs, deadline-fallback ${loop('deadline-fallback')} µs). ` +
            `The HTTP work per request is the same, and the runs already go to the native session without the public API's wrapper. ` +
            runBound(runs, one, runUs, busy) +
            'Fewer runtime calls (the members merged into one graph) were tried and measured, and fall short too: docs/operations.md, "Ensembles of tiny models". ' +
            'What would close it: a cheaper runtime call per member on this CPU, or members that cost less than the single model.'
          )
        }),
      ),
      notes: [
        'Members: models/cancer_logreg.onnx loaded three times (identical work per member).',
        'The targets are measured on the default config. The "batching" rows are an opt-in (docs/configuration.md, batching on the event loop), each against the batched single model.',
        `Closed loop, ${ctx.connections} connections. Placement at the end of the runs: ${placements.map((p, i) => `${members[i]} ${p.current} (${p.reason})`).join('; ')}.`,
      ],
    }
  },
}
