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
import { Rows, headline, ok2xx, repeat, target, type Scenario } from '../lib/scenario.ts'
import { model, specserveConfig, startSpecserve } from '../lib/servers.ts'
import { summarize } from '../lib/stats.ts'

/**
 * Every version uploaded is this same file: each upload is a whole swap (stored, loaded,
 * warmed, gated, swapped in, the old one closed), and the model served costs the same
 * before and after it, so the two rows differ only by the swaps (alternating models of
 * different cost would put the steady slices on one and the swapping ones on the other).
 */
const VERSION_FILE = 'cancer_logreg.onnx'

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
        rows.add('swapping', `a new version uploaded as each of its ${ctx.sliceS}-s slices starts (gated, swapped in)`, swapping!.result, {
          ...headline(swapping!.result, steady!.result),
          p99_ratio: swapping!.result.latency && steady!.result.latency ? swapping!.result.latency.p99 / steady!.result.latency.p99 : undefined,
          failed_requests: swapping!.result.requests - ok2xx(swapping!.result),
          swaps: actions.okMs.length,
          publish_to_serving_ms: summarize(actions.okMs)?.median,
        })
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
      targets: [
        target('no failed request while versions are swapped in', 'failed_requests', rows.summary('swapping', 'failed_requests'), '<=', 0, () =>
          'some predicts got a non-2xx answer during a swap: see the statuses of the swapping runs.',
        ),
        target('throughput while swapping ≥ 0.9× without', 'rps_ratio', rows.summary('swapping', 'rps_ratio'), '>=', 0.9, () =>
          'loading, warming and gating each version takes CPU from the predicts (on a 2-core box, the one inference worker and the event loop): the gate runs the 5 examples and the 143-row holdout on the new version.',
        ),
      ],
      notes: [
        `Closed loop, ${ctx.connections} connections, ensemble cancer = [cancer-main (repository), cancer-logreg], budget 1000 ms (so a failure is the swap's, not a missed deadline); every version uploaded is ${VERSION_FILE} again, so the model served costs the same before and after each swap.`,
        `The two loads take turns in ${ctx.sliceS}-s slices on the same gateway (bench/load/interleaved.ts): one swap per swapping slice, answered before the next slice starts (closing the old version, once its predicts are done, can still fall in the next slice).`,
        'publish_to_serving_ms: median time from the PUT sent to its 201 (stored, loaded, warmed, gated, swapped in); p99_ratio: p99 while swapping over p99 without.',
        ...notes,
      ],
    }
  },
}
