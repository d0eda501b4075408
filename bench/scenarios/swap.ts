// 11. Models as data: predict throughput and p99 on an ensemble whose preferred member is
// served from the repository while a new version is uploaded (PUT, gated on the demo's
// examples and 143-row holdout, swapped in) every few seconds, against the same load
// without swaps in the same run; and the time from publish to serving (the PUT answers
// once the version serves). Every non-2xx answer is a failed request.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { closedLoop } from '../lib/load.ts'
import { nativeBody } from '../lib/payloads.ts'
import { root } from '../lib/processes.ts'
import { Rows, headline, ok2xx, repeat, target, type Scenario } from '../lib/scenario.ts'
import { model, specserveConfig, startSpecserve } from '../lib/servers.ts'
import type { LoadResult } from '../lib/types.ts'

/** Alternated versions: both pass the gate, so every upload is a swap. */
const VERSIONS = ['cancer_mlp.onnx', 'cancer_logreg.onnx'] as const

interface Swapper {
  /** Milliseconds from each PUT sent to its answer (the version serving). */
  readonly publishToServingMs: number[]
  readonly failedUploads: string[]
  stop(): Promise<void>
}

/** Uploads the next version every `everyMs` until stopped; one upload at a time. */
function swapEvery(url: string, everyMs: number, firstVersion: number, bytes: readonly Buffer[]): Swapper {
  const publishToServingMs: number[] = []
  const failedUploads: string[] = []
  let stopped = false
  let wake: (() => void) | undefined
  const pause = (): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, everyMs)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  const loop = (async () => {
    for (let version = firstVersion; !stopped; version++) {
      await pause()
      if (stopped) break
      const started = performance.now()
      const res = await fetch(`${url}/v1/models/cancer-main/versions/${version}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes[version % bytes.length]! })
      const text = await res.text()
      if (res.status === 201) publishToServingMs.push(performance.now() - started)
      else failedUploads.push(`version ${version}: ${res.status} ${text.slice(0, 200)}`)
    }
  })()
  return {
    publishToServingMs,
    failedUploads,
    async stop() {
      stopped = true
      wake?.()
      await loop
    },
  }
}

const median = (values: readonly number[]): number | undefined => {
  if (!values.length) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

export const swap: Scenario = {
  id: 'swap',
  title: '11. Models as data: predicts while a new version is swapped in every few seconds',
  async run(ctx) {
    const everyMs = ctx.quick ? 500 : 3000
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
    const bytes = await Promise.all(VERSIONS.map((file) => readFile(model(file))))
    const rows = new Rows()
    const body = nativeBody()
    let nextVersion = 2
    const notes: string[] = []
    try {
      await repeat(ctx, 'swap', async () => {
        const load = (): Promise<LoadResult> => closedLoop({ url: `${server.url}/v1/ensembles/cancer/predict`, body, connections: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS })
        const steady = await load()
        rows.add('steady', 'no swaps', steady, { ...headline(steady, steady), failed_requests: steady.requests - ok2xx(steady) })
        const swapper = swapEvery(server.url, everyMs, nextVersion, bytes)
        const swapping = await load()
        await swapper.stop()
        nextVersion += swapper.publishToServingMs.length + swapper.failedUploads.length + 1
        notes.push(...swapper.failedUploads)
        rows.add('swapping', `a new version uploaded every ${everyMs} ms (gated, swapped in)`, swapping, {
          ...headline(swapping, steady),
          p99_ratio: swapping.latency && steady.latency ? swapping.latency.p99 / steady.latency.p99 : undefined,
          failed_requests: swapping.requests - ok2xx(swapping),
          swaps: swapper.publishToServingMs.length,
          publish_to_serving_ms: median(swapper.publishToServingMs),
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
        `Closed loop, ${ctx.connections} connections, ensemble cancer = [cancer-main (repository), cancer-logreg], budget 1000 ms (so a failure is the swap's, not a missed deadline); versions alternate cancer_mlp and cancer_logreg, both passing the gate.`,
        'publish_to_serving_ms: median time from the PUT sent to its 201 (stored, loaded, warmed, gated, swapped in); p99_ratio: p99 while swapping over p99 without.',
        ...notes.map((n) => `upload refused: ${n}`),
      ],
    }
  },
}
