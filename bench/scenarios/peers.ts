// 5. Peers on the same model: MLServer (scikit-learn runtime, the same logistic
// regression as a joblib pipeline) called directly over REST V2, vs specserve serving
// it embedded on its own V2 route with the very same request body; and seldon-core's v1
// microservice on the same pipeline, with its own body. The peers are provisioned and
// started by test/e2e/peers.ts (scripts/peers/*.sh into the cache), as the e2e tests do.
import type { ChildProcess } from 'node:child_process'
import { closedLoop } from '../lib/load.ts'
import { row, v2Body } from '../lib/payloads.ts'
import { track } from '../lib/processes.ts'
import { Rows, headline, notRun, ok2xx, repeat, target, type BenchContext, type Scenario } from '../lib/scenario.ts'
import { model, specserveConfig, startAll, startSpecserve } from '../lib/servers.ts'
import type { LoadResult } from '../lib/types.ts'

export interface Peer {
  readonly restUrl: string
  readonly grpcUrl: string
  readonly proc: { readonly child: ChildProcess }
  stop(): Promise<void>
}
/** What MLServer and seldon-core serve in the bench: the logistic regression, as joblib. */
export const served = { name: 'cancer', trained: 'cancer_logreg', features: row.length, classes: 2 }

/** Provisions and starts a real peer (test/e2e/peers.ts); undefined, with a note saying why, if it cannot. */
export async function startPeer(ctx: BenchContext, which: 'mlserver' | 'seldon', notes: string[]): Promise<Peer | undefined> {
  try {
    const peers = await import('../../test/e2e/peers.ts')
    ctx.log(`peers: provisioning and starting ${which} (test/e2e/peers.ts, scripts/peers/)`)
    const peer: Peer = await (which === 'mlserver' ? peers.startMlserver(served) : peers.startSeldon(served))
    track(peer.proc.child)
    return peer
  } catch (err) {
    notes.push(`${which}: not run: ${String((err as Error).message).split('\n')[0]}`)
    return undefined
  }
}

const quickMlservers = new WeakMap<BenchContext, Promise<{ peer: Peer | undefined; notes: string[] }>>()

/**
 * MLServer for scenarios 5 and 8. A full run starts one for each and stops it after, so an
 * idle Python server does not share the cores with the scenarios between. A quick run (a
 * smoke test: no figure counts) starts one, shared, saving a start: its stop() does nothing,
 * the run's cleanup (stopQuickMlserver) stops it, and why it did not start goes in each
 * scenario's notes.
 */
export async function mlserverFor(ctx: BenchContext, notes: string[]): Promise<Peer | undefined> {
  if (!ctx.quick) return startPeer(ctx, 'mlserver', notes)
  let started = quickMlservers.get(ctx)
  if (!started) {
    const own: string[] = []
    quickMlservers.set(ctx, (started = startPeer(ctx, 'mlserver', own).then((peer) => ({ peer, notes: own }))))
  }
  const { peer, notes: why } = await started
  notes.push(...why)
  return peer && { restUrl: peer.restUrl, grpcUrl: peer.grpcUrl, proc: peer.proc, stop: async () => undefined }
}

async function stopQuickMlserver(ctx: BenchContext): Promise<void> {
  const started = quickMlservers.get(ctx)
  quickMlservers.delete(ctx)
  await (await started)?.peer?.stop()
}

const max = (r: LoadResult, reference: LoadResult | undefined): Record<string, number | undefined> => ({
  ...headline(r, reference),
  failed: (r.requests - ok2xx(r)) / r.requests,
})

export const peers: Scenario = {
  id: 'peers',
  title: '5. Peers on the same model: MLServer (and seldon-core) vs specserve embedded',
  cleanup: stopQuickMlserver,
  async run(ctx) {
    const notes = [
      `Closed loop, ${ctx.connections} connections. MLServer and specserve: POST /v2/models/cancer/infer with the same Open Inference Protocol V2 JSON body.`,
      'MLServer: mlserver + mlserver-sklearn (scripts/peers/mlserver.sh), parallel_workers: 0 (inference in the server process; ' +
        'its worker-pool mode fails to start in this venv). It returns the sklearn predict output; specserve returns label and probabilities plus annotations.',
      'seldon-core: the v1 Python microservice (scripts/peers/seldon.sh), 1 worker, POST /api/v1.0/predictions {"data": {"ndarray": [row]}}. ' +
        '"non-2xx" includes connection errors and client timeouts (10 s).',
    ]
    // Started side by side (startup is not measured). seldon-core adds a slow start for a row no target depends on: full runs only.
    if (ctx.quick) notes.push('seldon-core: not run in quick mode.')
    const specserveConfigured = specserveConfig({ 'cancer-logreg': { kind: 'onnx', path: model('cancer_logreg.onnx') } }, { cancer: { strategy: 'deadline-fallback', models: ['cancer-logreg'], budget_ms: { default: 1000, max: 1000 } } })
    const [mlserver, seldon, specserve] = await startAll(
      mlserverFor(ctx, notes),
      ctx.quick ? Promise.resolve(undefined) : startPeer(ctx, 'seldon', notes),
      startSpecserve('peers', specserveConfigured, { dir: ctx.dir }),
    )
    const rows = new Rows()
    try {
      if (!mlserver) return notRun(this.id, this.title, notes.at(-1) ?? 'MLServer did not start')
      const spec = specserve
      await repeat(ctx, 'peers', async () => {
        const load = { connections: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS }
        const m = await closedLoop({ ...load, body: v2Body(), url: `${mlserver.restUrl}/v2/models/cancer/infer` })
        const s = await closedLoop({ ...load, body: v2Body(), url: `${spec.url}/v2/models/cancer/infer` })
        const sel = seldon ? await closedLoop({ ...load, body: JSON.stringify({ data: { ndarray: [row] } }), url: `${seldon.restUrl}/api/v1.0/predictions` }) : undefined
        rows.add('MLServer', 'MLServer, scikit-learn runtime, REST V2', m, max(m, m))
        if (sel) rows.add('seldon-core v1', 'seldon-core-microservice, REST v1 predictions', sel, max(sel, m))
        rows.add('specserve', 'single-model ensemble, ONNX embedded, REST V2', s, { ...max(s, m), rps_vs_seldon: sel ? s.throughput / sel.throughput : undefined })
      })
    } finally {
      await Promise.all([mlserver?.stop(), seldon?.stop(), specserve.stop()])
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'MLServer on the same model (the same scikit-learn pipeline as joblib), same run',
      variants: rows.variants(),
      targets: [
        target('specserve throughput ≥ 5× MLServer', 'rps_ratio', rows.summary('specserve', 'rps_ratio'), '>=', 5, () =>
          'both servers share the 2 cores with the load generator; the faster server is capped harder by the client than the slower one.',
        ),
      ],
      notes,
    }
  },
}
