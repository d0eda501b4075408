// 11. Models as data: predict throughput and p99 on an ensemble whose preferred member is
// served from the repository while a new version is uploaded (PUT, gated on the demo's
// examples and 143-row holdout, swapped in) as each of its slices starts, against the same
// load without swaps, the two taking turns on one gateway; and the time from publish to
// serving (the PUT answers 201 once the version serves). Every non-2xx predict is a failure.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { interleavedClosedLoop } from '../lib/load.ts'
import { nativeBody } from '../lib/payloads.ts'
import { root } from '../lib/processes.ts'
import { Rows, headline, ok2xx, repeat, target, unmeasured, type Scenario } from '../lib/scenario.ts'
import { model, specserveConfig, startSpecserve } from '../lib/servers.ts'
import { summarize, type Summary } from '../lib/stats.ts'
import type { LoadResult, SliceActionResults, Target } from '../lib/types.ts'

/**
 * Every version uploaded is this same file: each upload is a whole swap (stored, loaded,
 * warmed, gated, swapped in, the old one closed), and the model served costs the same
 * before and after it, so the two rows differ only by the swaps (alternating models of
 * different cost would put the steady slices on one and the swapping ones on the other).
 */
const VERSION_FILE = 'cancer_logreg.onnx'

/** The swapping row's figures for one repetition: its load against the steady one's, and its uploads' answers. */
export function swappingMetrics(steady: LoadResult, swapping: LoadResult, actions: SliceActionResults): Record<string, number | undefined> {
  return {
    ...headline(swapping, steady),
    p99_ratio: swapping.latency && steady.latency ? swapping.latency.p99 / steady.latency.p99 : undefined,
    failed_requests: swapping.requests - ok2xx(swapping),
    swaps: actions.okMs.length,
    swaps_failed: actions.failed.length,
    publish_to_serving_ms: summarize(actions.okMs)?.median,
  }
}

const TARGETS = {
  noFailure: { description: 'no failed request while versions are swapped in', metric: 'failed_requests', comparison: '<=', threshold: 0 },
  throughput: { description: 'throughput while swapping ≥ 0.9× without', metric: 'rps_ratio', comparison: '>=', threshold: 0.9 },
} as const

/**
 * The targets measure the load while versions are swapped in: when an upload was refused
 * (fewer swaps than slices) some slices ran with no swap at all, so neither is measured.
 */
export function swapTargets(rows: Rows): Target[] {
  const refused = rows.summary('swapping', 'swaps_failed')
  if (refused && refused.max > 0) {
    const sum = (s: Summary | null): number => (s?.values ?? []).reduce((a, b) => a + b, 0)
    const why = `${sum(refused)} of ${sum(refused) + sum(rows.summary('swapping', 'swaps'))} uploads were not swapped in (their answers are in the notes): those slices ran without the swap this target measures.`
    return Object.values(TARGETS).map((t) => unmeasured(t.description, t.metric, t.comparison, t.threshold, why))
  }
  const { noFailure, throughput } = TARGETS
  return [
    target(noFailure.description, noFailure.metric, rows.summary('swapping', noFailure.metric), noFailure.comparison, noFailure.threshold, () =>
      'some predicts got a non-2xx answer during a swap: see the statuses of the swapping runs.',
    ),
    target(throughput.description, throughput.metric, rows.summary('swapping', throughput.metric), throughput.comparison, throughput.threshold, () =>
      'loading, warming and gating each version takes CPU from the predicts (on a 2-core box, the one inference worker and the event loop): the gate runs the 5 examples and the 143-row holdout on the new version.',
    ),
  ]
}

export const swap: Scenario = {
  id: 'swap',
  title: '11. Models as data: predicts while a new version is swapped in every slice of load',
  async run(ctx) {
    const repository = join(ctx.dir, 'swap-repo')
    mkdirSync(repository, { recursive: true })
    const config = {
      ...specserveConfig(
        {
          'cancer-main': {
            kind: 'onnx',
            source: 'repository',
            path: model('cancer_logreg.onnx'),
            validation: { examples: join(root, 'examples', 'cancer_examples.jsonl'), dataset: { path: join(root, 'examples', 'cancer_holdout.csv'), label: 'target', min_accuracy: 0.96 } },
          },
          'cancer-logreg': { kind: 'onnx', path: model('cancer_logreg.onnx') },
        },
        // A budget no run comes near: a failure here is a swap's doing, not a deadline missed on a busy box (p99 shows the swaps' cost).
        { cancer: { strategy: 'deadline-fallback', models: ['cancer-main', 'cancer-logreg'], budget_ms: { default: 1000, max: 1000 } } },
      ),
      repository: { path: repository, keep_versions: 3, watch: false },
    }
    const server = await startSpecserve('swap', config, { dir: ctx.dir })
    const rows = new Rows()
    const url = `${server.url}/v1/ensembles/cancer/predict`
    let nextVersion = 2
    const notes: string[] = []
    try {
      await repeat(ctx, 'swap', async () => {
        // The two loads take turns on the one gateway; each "swapping" slice uploads the next
        // version as it starts (gated, swapped in) and waits for it before the next turn, so
        // the "steady" slices run on whichever version the last swap left serving.
        const eachSlice = { url: `${server.url}/v1/models/cancer-main/versions/{n}`, method: 'PUT' as const, file: model(VERSION_FILE), first: nextVersion, status: 201 }
        const [steady, swapping] = await interleavedClosedLoop({
          targets: [
            { url, body: nativeBody(), connections: ctx.connections },
            { url, body: nativeBody(), connections: ctx.connections, eachSlice },
          ],
          durationS: ctx.durationS,
          warmupS: ctx.warmupS,
          sliceS: ctx.sliceS,
        })
        const actions = swapping!.actions
        if (!actions) throw new Error('the load gave no upload results')
        nextVersion += actions.okMs.length + actions.failed.length
        notes.push(...actions.failed.map((f) => `upload of version ${f}`))
        if (actions.outlasted > 0) notes.push(`${actions.outlasted} upload(s) outlasted their ${ctx.sliceS}-s slice: the rest of their work ran between slices, charged to no row`)
        rows.add('steady', 'no swaps', steady!.result, { ...headline(steady!.result, steady!.result), failed_requests: steady!.result.requests - ok2xx(steady!.result) })
        rows.add('swapping', `a new version uploaded as each of its ${ctx.sliceS}-s slices starts (gated, swapped in)`, swapping!.result, swappingMetrics(steady!.result, swapping!.result, actions))
      })
    } finally {
      await server.stop()
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'the same gateway and load without swaps, same run',
      variants: rows.variants(),
      targets: swapTargets(rows),
      notes: [
        `Closed loop, ${ctx.connections} connections, ensemble cancer = [cancer-main (repository), cancer-logreg], budget 1000 ms (so a failure is the swap's, not a missed deadline); every version uploaded is ${VERSION_FILE} again, so the model served costs the same before and after each swap.`,
        `The two loads take turns in ${ctx.sliceS}-s slices on the same gateway (bench/load/interleaved.ts): one swap per swapping slice, answered before the next slice starts (closing the old version, once its predicts are done, can still fall in the next slice).`,
        'publish_to_serving_ms: median time from the PUT sent to its 201 (stored, loaded, warmed, gated, swapped in); p99_ratio: p99 while swapping over p99 without. ' +
          'An upload not answered 201 leaves its slice without a swap, so the targets are then reported as not measured; "no failed request" is judged on the worst repetition.',
        ...notes,
      ],
    }
  },
}
