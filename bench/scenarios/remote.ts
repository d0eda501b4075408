// 8. Remote members. (a) What the gateway adds to a call: the same V2 request sent to
// MLServer directly, and to specserve serving an ensemble whose one member is that
// MLServer model (oip executor, REST and gRPC), one request at a time so latency is
// the path's own, not queueing; and the same pairs against a stub peer that costs no
// CPU, answering at once or after a 3 ms timer, to separate the gateway's own cost from
// the peer's and from the cost of waking up after idling. (b) What a remote
// member that never answers costs an ensemble's throughput, circuit breaker on and off.
import { closedLoop, pairedSequential } from '../lib/load.ts'
import { nativeBody, row, v2Body } from '../lib/payloads.ts'
import { Rows, headline, notRun, ok2xx, repeat, target, type Scenario } from '../lib/scenario.ts'
import { model, specserveConfig, startAll, startBareProxy, startHangPeer, startSpecserve, startV2Stub, type Server } from '../lib/servers.ts'
import type { LoadResult } from '../lib/types.ts'
import { mlserverFor, peers, served } from './peers.ts'

const HUNG_BUDGET_MS = 20
/** About MLServer's own p50 here: the slow stub makes the gateway idle as long as MLServer does, with no CPU used. */
const STUB_DELAY_MS = 3
/** Requests each target gets back to back before the next one's turn. */
const PAIRED_BLOCK = 20
/** MLServer's names for the two outputs; the direct call asks for both, as the gateway's member does. */
const UPSTREAM_OUTPUTS = ['predict', 'predict_proba'] as const

const io = {
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, row.length] }],
  outputs: [
    { name: 'label', datatype: 'INT64', shape: [-1], upstream: 'predict' },
    { name: 'probabilities', datatype: 'FP32', shape: [-1, 2], upstream: 'predict_proba' },
  ],
}

function gatewayConfig(mlserver: { restUrl: string; grpcUrl: string }, stubs: { fast: string; slow: string }, hangUrl: string): Record<string, unknown> {
  const solo = (member: string): Record<string, unknown> => ({ strategy: 'deadline-fallback', models: [member], budget_ms: { default: 1000, max: 1000 } })
  const hung = (member: string | null): Record<string, unknown> => ({
    strategy: 'deadline-fallback',
    models: member ? [member, 'cancer-logreg'] : ['cancer-logreg'],
    budget_ms: { default: HUNG_BUDGET_MS, max: HUNG_BUDGET_MS },
  })
  return specserveConfig(
    {
      'cancer-logreg': { kind: 'onnx', path: model('cancer_logreg.onnx') },
      'mlserver-rest': { kind: 'oip', url: mlserver.restUrl, model: served.name, protocol: 'rest', ...io },
      'mlserver-grpc': { kind: 'oip', url: mlserver.grpcUrl, model: served.name, protocol: 'grpc', ...io },
      'stub-fast': { kind: 'oip', url: stubs.fast, model: served.name, protocol: 'rest', ...io },
      'stub-slow': { kind: 'oip', url: stubs.slow, model: served.name, protocol: 'rest', ...io },
      'never-answers': { kind: 'oip', url: hangUrl, model: served.name, protocol: 'rest', ...io },
      // The breaker "off": a failure count no run reaches.
      'never-answers-no-breaker': { kind: 'oip', url: hangUrl, model: served.name, protocol: 'rest', ...io, circuit_breaker: { failures: 1_000_000_000 } },
    },
    {
      'via-rest': solo('mlserver-rest'),
      'via-grpc': solo('mlserver-grpc'),
      'via-stub-fast': solo('stub-fast'),
      'via-stub-slow': solo('stub-slow'),
      'fallback-alone': hung(null),
      'hung-member': hung('never-answers'),
      'hung-member-no-breaker': hung('never-answers-no-breaker'),
    },
  )
}

const latency = (r: LoadResult): Record<string, number | undefined> => ({
  ...headline(r),
  failed: (r.requests - ok2xx(r)) / r.requests,
})

/**
 * A paired row (bench/load/paired.ts): latency only. Its targets took turns over one shared
 * run, so its 2xx count over that run is not a rate any target sustained: no req/s.
 */
export function pairedMetrics(r: LoadResult, baseline?: LoadResult): Record<string, number | undefined> {
  return {
    rps: undefined, // keeps the req/s column where the closed-loop rows put it, showing "–" here
    p50: r.latency?.p50,
    p99: r.latency?.p99,
    failed: (r.requests - ok2xx(r)) / r.requests,
    ...(baseline
      ? { p50_added: (r.latency?.p50 ?? NaN) - (baseline.latency?.p50 ?? NaN), p99_added: (r.latency?.p99 ?? NaN) - (baseline.latency?.p99 ?? NaN) }
      : {}),
  }
}

export const remote: Scenario = {
  id: 'remote',
  title: '8. Remote members: latency added over calling MLServer directly, and a remote member that never answers',
  cleanup: (ctx) => peers.cleanup!(ctx),
  async run(ctx) {
    const notes: string[] = []
    let proxy: Server | undefined // needs MLServer's address, so it starts after the others
    const [mlserver, fastStub, slowStub, hang] = await startAll(mlserverFor(ctx, notes), startV2Stub(0), startV2Stub(STUB_DELAY_MS), startHangPeer())
    if (!mlserver) {
      await Promise.all([fastStub.stop(), slowStub.stop(), hang.stop()])
      return notRun(this.id, this.title, notes.at(-1) ?? 'MLServer did not start')
    }
    const rows = new Rows()
    try {
      proxy = await startBareProxy(mlserver.restUrl)
      const hopUrl = proxy.url
      const gateway = await startSpecserve('remote', gatewayConfig(mlserver, { fast: fastStub.url, slow: slowStub.url }, hang.url), { dir: ctx.dir, readyTimeoutMs: 60_000 })
      try {
        const body = v2Body([...UPSTREAM_OUTPUTS])
        const grpcRequest = {
          model_name: served.name,
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, row.length], contents: { fp32_contents: row } }],
          outputs: UPSTREAM_OUTPUTS.map((name) => ({ name })),
        }
        const gatewayBody = v2Body()
        const many = { connections: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS, body: nativeBody() }
        await repeat(ctx, 'remote', async () => {
          // (a) One request at a time, the nine targets taking turns; each direct row is the baseline of the rows through the gateway after it.
          const direct = (url: string): { url: string; body: string } => ({ url: `${url}/v2/models/${served.name}/infer`, body })
          const via = (ensemble: string): { url: string; body: string } => ({ url: `${gateway.url}/v2/models/${ensemble}/infer`, body: gatewayBody })
          const mlsGrpc = { grpc: { address: mlserver.grpcUrl.replace(/^grpc:\/\//, ''), proto: 'inference/grpc_service.proto', service: 'inference.GRPCInferenceService', method: 'ModelInfer', request: grpcRequest } }
          const [mls, hop, rest, mlsG, grpc, fast, viaFast, slow, viaSlow] = (await pairedSequential({
            targets: [direct(mlserver.restUrl), direct(hopUrl), via('via-rest'), mlsGrpc, via('via-grpc'), direct(fastStub.url), via('via-stub-fast'), direct(slowStub.url), via('via-stub-slow')],
            block: PAIRED_BLOCK,
            durationS: ctx.durationS * 3,
            warmupS: ctx.warmupS,
          })) as LoadResult[]
          rows.add('MLServer direct', 'POST /v2/models/cancer/infer on MLServer', mls!, pairedMetrics(mls!))
          rows.add('bare Node proxy → MLServer', 'bench/peers/bare-proxy.ts: node:http + an undici pool forwarding the same bytes, no parsing (the floor of any Node hop)', hop!, pairedMetrics(hop!, mls!))
          rows.add('via specserve, oip REST', 'POST /v2/models/via-rest/infer on specserve → MLServer over REST', rest!, {
            ...pairedMetrics(rest!, mls!),
            p50_over_hop: (rest!.latency?.p50 ?? NaN) - (hop!.latency?.p50 ?? NaN),
          })
          rows.add('MLServer direct, gRPC', 'inference.GRPCInferenceService/ModelInfer on MLServer, the same request (grpc-js client)', mlsG!, pairedMetrics(mlsG!))
          rows.add('via specserve, oip gRPC', 'POST /v2/models/via-grpc/infer on specserve → MLServer over gRPC', grpc!, pairedMetrics(grpc!, mlsG!))
          rows.add('stub direct', 'bench/peers/v2-stub.ts: fixed tensors, answered at once', fast!, pairedMetrics(fast!))
          rows.add('via specserve → stub', 'specserve → that stub over REST', viaFast!, pairedMetrics(viaFast!, fast!))
          rows.add(`stub +${STUB_DELAY_MS} ms direct`, `the stub answering after a ${STUB_DELAY_MS} ms timer (no CPU)`, slow!, pairedMetrics(slow!))
          rows.add(`via specserve → stub +${STUB_DELAY_MS} ms`, 'specserve → that stub over REST', viaSlow!, pairedMetrics(viaSlow!, slow!))
          // (b) Max throughput: the fallback alone, then with a preferred member that never answers.
          const alone = await closedLoop({ ...many, url: `${gateway.url}/v1/ensembles/fallback-alone/predict` })
          rows.add('no hung member', `[cancer-logreg] alone, deadline-fallback, budget ${HUNG_BUDGET_MS} ms`, alone, { ...latency(alone), rps_ratio: 1 })
          for (const [name, ensemble, what] of [
            ['hung member, breaker on', 'hung-member', 'circuit_breaker defaults (opens after 5 consecutive failures, probes every 5 s)'],
            ['hung member, breaker off', 'hung-member-no-breaker', 'circuit breaker never opens'],
          ] as const) {
            const r = await closedLoop({ ...many, url: `${gateway.url}/v1/ensembles/${ensemble}/predict` })
            rows.add(name, `[never-answers (oip REST), cancer-logreg], deadline-fallback, budget ${HUNG_BUDGET_MS} ms; ${what}`, r, {
              ...latency(r),
              rps_ratio: r.throughput / alone.throughput,
            })
          }
        })
      } finally {
        await gateway.stop()
      }
    } finally {
      await Promise.all([mlserver.stop(), fastStub.stop(), slowStub.stop(), hang.stop(), proxy?.stop()])
    }
    const addedWhy = (): string => {
      const fmt = (row: string, metric = 'p50_added'): string => {
        const v = rows.summary(row, metric)?.median
        return v === undefined ? '–' : `${v.toFixed(2)} ms`
      }
      return (
        `a bare Node proxy (no parsing, no logic) in front of the same MLServer adds ${fmt('bare Node proxy → MLServer')} at p50 in the same run: ` +
        `the price of any extra Node hop on this box (two more loopback transfers and a process woken twice). specserve adds ` +
        `${fmt('via specserve, oip REST', 'p50_over_hop')} over that hop: parse and validate the request, encode the upstream call, decode and ` +
        `check its answer, annotate. Against a stub that answers at once it adds ${fmt('via specserve → stub')}, and against the same stub ` +
        `answering after a ${STUB_DELAY_MS} ms timer (no CPU) ${fmt(`via specserve → stub +${STUB_DELAY_MS} ms`)}: the same work costs more ` +
        'after the gateway has sat idle waiting, which is what one request at a time to a slower peer makes it do.'
      )
    }
    const grpcWhy = (): string =>
      'measured against MLServer called directly over gRPC with the same request, the baseline a client of a gRPC-served model ' +
      'would have. Through the gateway the client speaks REST to specserve, which calls MLServer over gRPC: a second hop, and a ' +
      'grpc-js unary call (HTTP/2 stream, metadata, protobuf encoding) costs the gateway more event-loop time than an undici request.'
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: '(a) MLServer called directly with the same request over the same protocol (REST, or gRPC for the gRPC member), same run; (b) the gateway serving the fallback model alone, same run',
      variants: rows.variants(),
      targets: [
        target('added latency at p50 ≤ 1 ms (oip REST)', 'p50_added', rows.summary('via specserve, oip REST', 'p50_added'), '<=', 1, addedWhy),
        target('added latency at p50 ≤ 1 ms (oip gRPC)', 'p50_added', rows.summary('via specserve, oip gRPC', 'p50_added'), '<=', 1, grpcWhy),
      ],
      notes: [
        `(a) One request at a time, the nine rows taking turns in blocks of ${PAIRED_BLOCK} back-to-back requests (bench/load/paired.ts), ` +
          `each over its own keep-alive connection, so drift on the shared box hits them alike. MLServer with parallel_workers: 0, the same logistic ` +
          `regression as joblib. The direct request asks for outputs ${UPSTREAM_OUTPUTS.join(' and ')}; the gateway's member asks MLServer for the same two. ` +
          'These rows have no req/s: the nine share one run, so none of them sustained a rate of its own.',
        `(b) Closed loop, ${ctx.connections} connections. The member that never answers is bench/peers/hang-server.ts: it accepts the ` +
          'connection and reads the request. With the breaker on, the member is skipped while the circuit is open (one probe per 5 s ' +
          'waits out its budget). With it off every request waits for its whole budget, so the 32 connections fall into step: ' +
          'their calls time out together, and each timed-out call costs the event loop a closed and reopened upstream connection ' +
          '(HTTP/1.1 cannot cancel a request any other way) plus an abort error (about a quarter of the main thread in a CPU profile ' +
          'of an earlier session). Fallback results that arrive behind such a burst can miss the 20 ms budget (504): the "non-2xx or ' +
          'failed" column says how many did in this run, with the breaker on and off.',
        ...notes,
      ],
    }
  },
}
