// 7. The same predict over gRPC (specserve.v1.Gateway/Predict, ghz) and REST
// (autocannon), against one gateway process, same concurrency; and unary vs PredictStream
// with one grpc-js client at that concurrency (the same client both ways).
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Client, Metadata, credentials } from '@grpc/grpc-js'
import protobuf from 'protobufjs'
import { request } from 'undici'
import { closedLoop, ghzClosedLoop, grpcClosedLoop, type GhzSpec } from '../lib/load.ts'
import { grpcPredict, nativeBody } from '../lib/payloads.ts'
import { root, run } from '../lib/processes.ts'
import { Rows, headline, notRun, repeat, target, type BenchContext, type Scenario } from '../lib/scenario.ts'
import { startAll, startNullGrpc, startNullHttp, startSpecserve, type Server } from '../lib/servers.ts'
import { singleModelConfig } from './overhead.ts'
import type { LoadResult } from '../lib/types.ts'

/** The bench's request as protobuf bytes (base64), encoded once here from our .proto. */
function encodedPredict(): string {
  const type = new protobuf.Root().loadSync(join(root, 'proto', 'specserve', 'v1', 'gateway.proto'), { keepCase: true }).lookupType('specserve.v1.PredictRequest')
  return Buffer.from(type.encode(type.fromObject(grpcPredict('logreg') as Record<string, unknown>)).finish()).toString('base64')
}

/**
 * The gateway's own answers to the bench's request, as bytes (the REST body, the gRPC
 * PredictResponse): the ceilings' servers answer with them, so each load generator reads
 * and decodes exactly what it reads from the gateway.
 */
async function gatewayAnswers(server: Server): Promise<{ rest: Buffer; grpc: Buffer }> {
  const limits = { headersTimeout: 10_000, bodyTimeout: 10_000 }
  const res = await request(`${server.url}/v1/ensembles/logreg/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: nativeBody(), ...limits })
  const rest = Buffer.from(await res.body.arrayBuffer())
  if (res.statusCode !== 200) throw new Error(`the gateway answered ${res.statusCode}: ${rest.toString()}`)
  const client = new Client(`127.0.0.1:${server.grpcPort}`, credentials.createInsecure())
  try {
    const same = (b: Buffer): Buffer => b
    const grpc = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest('/specserve.v1.Gateway/Predict', same, same, Buffer.from(encodedPredict(), 'base64'), new Metadata(), { deadline: Date.now() + 10_000 }, (err, value) =>
        err || !value ? reject(err ?? new Error('no answer')) : resolve(value),
      ),
    )
    return { rest, grpc }
  } finally {
    client.close()
  }
}

/** ghz, installed by scripts/ghz.sh, and its version; or why it could not be. */
export async function ghzBinary(): Promise<{ ghz: string; version: string } | string> {
  let ghz: string
  try {
    ghz = (await run('bash', [join(root, 'scripts', 'ghz.sh')])).trim().split('\n').pop() as string
  } catch (err) {
    return `ghz could not be installed (scripts/ghz.sh): ${String((err as Error).message).split('\n')[0]}`
  }
  // scripts/go-tools.sh stamps the pinned module version next to the binary.
  const stamp = join(dirname(ghz), '.ghz.version')
  return { ghz, version: existsSync(stamp) ? (readFileSync(stamp, 'utf8').trim().split('@').pop() ?? '') : '' }
}

/** ghz's closed loop of the single-model Predict at `address`, with the run's concurrency and durations; `extra`: TLS, metadata. */
export function ghzPredict(ctx: BenchContext, ghz: { ghz: string; version: string }, address: string, extra: Partial<GhzSpec> = {}): Promise<LoadResult> {
  return ghzClosedLoop({
    ...ghz,
    target: address,
    call: 'specserve.v1.Gateway/Predict',
    proto: 'proto/specserve/v1/gateway.proto',
    data: grpcPredict('logreg'),
    concurrency: ctx.connections,
    durationS: ctx.durationS,
    warmupS: ctx.warmupS,
    ...extra,
  })
}

export const grpc: Scenario = {
  id: 'grpc',
  title: '7. gRPC vs REST',
  async run(ctx) {
    if (!existsSync(join(root, 'src', 'api', 'grpc', 'server.ts'))) return notRun(this.id, this.title, 'the gRPC frontend (src/api/grpc) does not exist yet')
    const found = await ghzBinary()
    if (typeof found === 'string') return notRun(this.id, this.title, found)
    const { ghz, version } = found
    // The ceilings: each load generator against a server that answers at once and does
    // nothing, on the same cores, with the gateway's own answer. Whatever the gateway does,
    // its rows cannot pass these.
    const server = await startSpecserve('grpc', singleModelConfig(), { dir: ctx.dir, grpc: true })
    let answers: { rest: Buffer; grpc: Buffer }
    let nullHttp: Server
    let nullGrpc: Server
    try {
      answers = await gatewayAnswers(server)
      ;[nullHttp, nullGrpc] = await startAll(startNullHttp(answers.rest), startNullGrpc(answers.grpc))
    } catch (err) {
      await server.stop()
      throw err
    }
    const rows = new Rows()
    const ghzLoad = (address: string, on: Server) => ghzPredict(ctx, { ghz, version }, address, { pid: on.proc.child.pid })
    // The gateway's CPU per request, apart from the load generator's (what each frontend costs the server), and the whole box's idle share.
    const cpu = (r: LoadResult) => ({ cpu_us: r.cpu?.all, loop_cpu_us: r.cpu?.main, box_idle: r.cpu?.boxIdle })
    try {
      await repeat(ctx, 'grpc', async () => {
        const rest = await closedLoop({ url: `${server.url}/v1/ensembles/logreg/predict`, body: nativeBody(), connections: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS, pid: server.proc.child.pid })
        const g = await ghzLoad(`127.0.0.1:${server.grpcPort}`, server)
        const restCeiling = await closedLoop({ url: `${nullHttp.url}/`, body: nativeBody(), connections: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS, pid: nullHttp.proc.child.pid })
        const grpcCeiling = await ghzLoad(nullGrpc.url.replace('http://', ''), nullGrpc)
        const grpcJs = { target: `127.0.0.1:${server.grpcPort}`, request: encodedPredict(), concurrency: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS, pid: server.proc.child.pid }
        const unary = await grpcClosedLoop({ ...grpcJs, mode: 'unary' })
        const stream = await grpcClosedLoop({ ...grpcJs, mode: 'stream' })
        rows.add('REST', `POST /v1/ensembles/logreg/predict, autocannon ${ctx.connections} connections`, rest, { ...headline(rest, rest), ...cpu(rest), of_ceiling: rest.throughput / restCeiling.throughput })
        rows.add('gRPC', `specserve.v1.Gateway/Predict, ghz ${ctx.connections} workers on 1 connection, one core (--cpus 1, as autocannon's one thread)`, g, { ...headline(g, rest), ...cpu(g), of_ceiling: g.throughput / grpcCeiling.throughput })
        rows.add('gRPC unary (grpc-js)', `Predict, ${ctx.connections} calls in flight on 1 connection, grpc-js client`, unary, { ...headline(unary, rest), ...cpu(unary) })
        rows.add('gRPC stream (grpc-js)', `one PredictStream, ${ctx.connections} messages in flight, same client`, stream, { ...headline(stream, rest), ...cpu(stream) })
        rows.add('ceiling: autocannon vs a null HTTP server', `bench/peers/null-http.ts: node:http answering at once with the gateway's ${answers.rest.length}-byte body, no work`, restCeiling, { ...headline(restCeiling, rest), ...cpu(restCeiling) })
        // The most the gRPC row could show against this REST row: ghz's own cost on these cores.
        rows.add('ceiling: ghz vs a null gRPC server', `bench/peers/null-grpc.ts: node:http2 answering at once with the gateway's ${answers.grpc.length}-byte PredictResponse, no grpc-js, no work`, grpcCeiling, { ...headline(grpcCeiling, rest), ...cpu(grpcCeiling) })
      })
    } finally {
      await Promise.all([server.stop(), nullHttp.stop(), nullGrpc.stop()])
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'REST on the same gateway process, same run',
      variants: rows.variants(),
      targets: [
        target('gRPC throughput ≥ 80% of REST', 'rps_ratio', rows.summary('gRPC', 'rps_ratio'), '>=', 0.8, () => {
          const ceiling = rows.summary('ceiling: ghz vs a null gRPC server', 'rps_ratio')?.median
          const ofCeiling = rows.summary('gRPC', 'of_ceiling')?.median
          const cpuOf = (row: string): number | undefined => rows.summary(row, 'cpu_us')?.median
          const idle = (row: string): number | undefined => rows.summary(row, 'box_idle')?.median
          const f = (v: number | undefined, as: (v: number) => string): string => (v === undefined ? '?' : as(v))
          const pct = (v: number | undefined): string => f(v, (x) => `${Math.round(x * 100)}%`)
          const [grpcIdle, restIdle, grpcUs, restUs] = [idle('gRPC'), idle('REST'), cpuOf('gRPC'), cpuOf('REST')]
          const reading = (): string => {
            if (grpcIdle === undefined || restIdle === undefined) return ''
            if (grpcIdle > restIdle + 0.03) {
              return (
                `: idler than under REST. ghz's ${ctx.connections} calls share one HTTP/2 connection, and node:http2 sends what a turn of the event loop wrote ` +
                'only when the loop turns, so the two sides can work on bursts of calls in turn rather than at once (the inline lane runs about 8 per turn while a gRPC answer waits: src/executors/onnx/inline-turns.ts)'
              )
            }
            if (grpcUs !== undefined && restUs !== undefined && grpcUs > restUs * 1.05) return ': the box was no idler than under REST, and a gRPC predict cost the gateway more CPU'
            return ': the box was no idler than under REST, at no more gateway CPU per call'
          }
          return (
            `ghz (Go, held to one core as autocannon is, its call data sent as given rather than rendered as a template for every call) against a server ` +
            `that answers at once with the same response and does nothing reached ${f(ceiling, (v) => v.toFixed(2))}× this REST row; ` +
            `specserve reached ${pct(ofCeiling)} of that ceiling. ` +
            `A gRPC predict cost the gateway ${f(grpcUs, (v) => v.toFixed(0))} µs of CPU against ${f(restUs, (v) => v.toFixed(0))} µs for a REST one, and the box (both cores) was ` +
            `${pct(grpcIdle)} idle under the gRPC load against ${pct(restIdle)} under REST${reading()}. ` +
            'A plain Predict does not go through @grpc/grpc-js per-call machinery (src/api/grpc/fast-unary.ts), and its messages are coded by hand.'
          )
        }),
        target('gRPC streaming throughput ≥ REST', 'rps_ratio', rows.summary('gRPC stream (grpc-js)', 'rps_ratio'), '>=', 1.0, () =>
          'the grpc-js load client (Node) needs more CPU per message than autocannon per request, on the same 2 cores; ' +
            'compare the stream row with the unary row of the same client for the server-side gain.',
        ),
      ],
      notes: [
        'Same ensemble, same gateway process; the two loads run one after the other.',
        `Box idle: the share of both cores' time idle over each load's run (/proc/stat); ghz's run includes its start-up and its report (a few tenths of a second of a ${ctx.durationS}-s run, while the gateway idles).`,
      ],
    }
  },
}
