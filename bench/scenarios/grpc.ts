// 7. The same predict over gRPC (specserve.v1.Gateway/Predict, ghz) and REST
// (autocannon), against one gateway process, same concurrency; and unary vs PredictStream
// with one grpc-js client at that concurrency (the same client both ways).
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import protobuf from 'protobufjs'
import { closedLoop, ghzClosedLoop, grpcClosedLoop } from '../lib/load.ts'
import { grpcPredict, nativeBody } from '../lib/payloads.ts'
import { root, run } from '../lib/processes.ts'
import { Rows, headline, notRun, repeat, target, type Scenario } from '../lib/scenario.ts'
import { startSpecserve } from '../lib/servers.ts'
import { singleModelConfig } from './overhead.ts'

/** The bench's request as protobuf bytes (base64), encoded once here from our .proto. */
function encodedPredict(): string {
  const type = new protobuf.Root().loadSync(join(root, 'proto', 'specserve', 'v1', 'gateway.proto'), { keepCase: true }).lookupType('specserve.v1.PredictRequest')
  return Buffer.from(type.encode(type.fromObject(grpcPredict('logreg') as Record<string, unknown>)).finish()).toString('base64')
}

export const grpc: Scenario = {
  id: 'grpc',
  title: '7. gRPC vs REST',
  async run(ctx) {
    if (!existsSync(join(root, 'src', 'api', 'grpc', 'server.ts'))) return notRun(this.id, this.title, 'the gRPC frontend (src/api/grpc) does not exist yet')
    let ghz: string
    try {
      ghz = (await run('bash', [join(root, 'scripts', 'ghz.sh')])).trim().split('\n').pop() as string
    } catch (err) {
      return notRun(this.id, this.title, `ghz could not be installed (scripts/ghz.sh): ${String((err as Error).message).split('\n')[0]}`)
    }
    // scripts/go-tools.sh stamps the pinned module version next to the binary.
    const stamp = join(dirname(ghz), '.ghz.version')
    const version = existsSync(stamp) ? (readFileSync(stamp, 'utf8').trim().split('@').pop() ?? '') : ''
    const server = await startSpecserve('grpc', singleModelConfig(), { dir: ctx.dir, grpc: true })
    const rows = new Rows()
    try {
      await repeat(ctx, 'grpc', async () => {
        const rest = await closedLoop({ url: `${server.url}/v1/ensembles/logreg/predict`, body: nativeBody(), connections: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS })
        const g = await ghzClosedLoop({
          ghz,
          version,
          target: `127.0.0.1:${server.grpcPort}`,
          call: 'specserve.v1.Gateway/Predict',
          proto: 'proto/specserve/v1/gateway.proto',
          data: grpcPredict('logreg'),
          concurrency: ctx.connections,
          durationS: ctx.durationS,
          warmupS: ctx.warmupS,
        })
        const grpcJs = { target: `127.0.0.1:${server.grpcPort}`, request: encodedPredict(), concurrency: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS }
        const unary = await grpcClosedLoop({ ...grpcJs, mode: 'unary' })
        const stream = await grpcClosedLoop({ ...grpcJs, mode: 'stream' })
        rows.add('REST', `POST /v1/ensembles/logreg/predict, autocannon ${ctx.connections} connections`, rest, headline(rest, rest))
        rows.add('gRPC', `specserve.v1.Gateway/Predict, ghz ${ctx.connections} workers on 1 connection`, g, headline(g, rest))
        rows.add('gRPC unary (grpc-js)', `Predict, ${ctx.connections} calls in flight on 1 connection, grpc-js client`, unary, headline(unary, rest))
        rows.add('gRPC stream (grpc-js)', `one PredictStream, ${ctx.connections} messages in flight, same client`, stream, headline(stream, rest))
      })
    } finally {
      await server.stop()
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'REST on the same gateway process, same run',
      variants: rows.variants(),
      targets: [
        target('gRPC throughput ≥ 80% of REST', 'rps_ratio', rows.summary('gRPC', 'rps_ratio'), '>=', 0.8, () =>
          '@grpc/grpc-js does more per call than fastify on plain HTTP/1.1 (an HTTP/2 stream, headers and trailers per call; ' +
            'Predict messages are coded by hand since issue 14), and ghz (Go) and the gateway share the 2 cores.',
        ),
        target('gRPC streaming throughput ≥ REST', 'rps_ratio', rows.summary('gRPC stream (grpc-js)', 'rps_ratio'), '>=', 1.0, () =>
          'the grpc-js load client (Node) needs more CPU per message than autocannon per request, on the same 2 cores; ' +
            'compare the stream row with the unary row of the same client for the server-side gain.',
        ),
      ],
      notes: ['Same ensemble, same gateway process; the two loads run one after the other.'],
    }
  },
}
