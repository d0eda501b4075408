// 12. What security costs: predict throughput over TLS with a JWT on every request against
// plaintext and open (the same model, the same run), TLS alone to tell the two apart, and
// the cost of a refused request (no credentials: 401 before the body is read). Then the same
// over gRPC (ghz): plaintext and open against TLS with the token as call metadata.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { makePki } from '../../test/security/certs.ts'
import { interleavedClosedLoop } from '../lib/load.ts'
import { nativeBody } from '../lib/payloads.ts'
import { Rows, headline, repeat, target, type Scenario } from '../lib/scenario.ts'
import { startAll, startSpecserve } from '../lib/servers.ts'
import type { LoadResult } from '../lib/types.ts'
import { ghzBinary, ghzPredict } from './grpc.ts'
import { singleModelConfig } from './overhead.ts'

const AUDIENCE = 'specserve-bench'
const ISSUER = 'https://bench.invalid/'

/** Refusals per second and the wall time each took at saturation (an upper bound on the gateway's CPU per refusal). */
function refusals(run: LoadResult, served: LoadResult): Record<string, number | undefined> {
  // The 401s' share of what was sent per measured second (durationS is the nominal time).
  const refusedPerS = run.requests === 0 ? 0 : (run.sentRate * (run.statuses['401'] ?? 0)) / run.requests
  return { refused_rps: refusedPerS, us_per_refusal: 1e6 / refusedPerS, refused_p50: run.errorLatency?.p50, refused_p99: run.errorLatency?.p99, refused_vs_served: refusedPerS / served.throughput }
}

export const security: Scenario = {
  id: 'security',
  title: '12. Security: TLS + JWT vs plaintext and open, and the cost of a refused request',
  async run(ctx) {
    const pki = makePki()
    const server = pki.issue('bench-server')
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    const keyFile = join(ctx.dir, 'idp.pem')
    writeFileSync(keyFile, await exportSPKI(publicKey))
    const jwt = await new SignJWT({ scope: 'predict:logreg' }).setProtectedHeader({ alg: 'ES256' }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('bench').setExpirationTime('6h').sign(privateKey)
    const tls = { tls: { cert: server.cert, key: server.key } }
    const auth = { auth: { jwt: { key_file: keyFile, issuer: ISSUER, audience: AUDIENCE }, anonymous: ['health'] } }
    const ca = readFileSync(pki.ca, 'utf8')
    const ghz = await ghzBinary()
    const grpc = typeof ghz !== 'string'
    const [open, tlsOnly, guarded] = await startAll(
      startSpecserve('security-open', singleModelConfig(), { dir: ctx.dir, grpc }),
      startSpecserve('security-tls', singleModelConfig(tls), { dir: ctx.dir, tlsCa: ca }),
      startSpecserve('security-tls-jwt', { ...singleModelConfig(tls), ...auth }, { dir: ctx.dir, tlsCa: ca, grpc }),
    )
    // gRPC's rows: ghz one at a time after the interleaved REST rows (it cannot take turns with autocannon).
    const ghzLoad = (port: number | undefined, secure: boolean): Promise<LoadResult> => {
      if (typeof ghz === 'string' || port === undefined) throw new Error('no gRPC listener')
      return ghzPredict(ctx, ghz, `127.0.0.1:${port}`, secure ? { caFile: pki.ca, metadata: { authorization: `Bearer ${jwt}` } } : {})
    }
    const rows = new Rows()
    const path = '/v1/ensembles/logreg/predict'
    const load = { body: nativeBody(), connections: ctx.connections }
    try {
      await repeat(ctx, 'security', async () => {
        // Interleaved, so the four share the box's same minutes.
        const targets = [
          { ...load, url: `${open.url}${path}` },
          { ...load, url: `${tlsOnly.url}${path}` },
          { ...load, url: `${guarded.url}${path}`, headers: { authorization: `Bearer ${jwt}` } },
          { ...load, url: `${guarded.url}${path}` },
        ]
        const [o, t, g, refused] = (await interleavedClosedLoop({ targets, durationS: ctx.durationS, warmupS: ctx.warmupS, sliceS: ctx.sliceS })).map((r) => r.result) as [LoadResult, LoadResult, LoadResult, LoadResult]
        rows.add('plaintext, open', 'no tls, no auth (today\'s default)', o, headline(o, o))
        rows.add('TLS, open', 'server.tls, no auth', t, headline(t, o))
        rows.add('TLS + JWT', 'server.tls and auth.jwt (ES256, key file); every request carries the token', g, headline(g, o))
        rows.add('refused (401)', 'TLS + JWT gateway, requests without credentials', refused, refusals(refused, o))
        if (!grpc) return
        const go = await ghzLoad(open.grpcPort, false)
        const gg = await ghzLoad(guarded.grpcPort, true)
        rows.add('gRPC, plaintext open', `specserve.v1.Gateway/Predict on the open gateway, ghz ${ctx.connections} workers on 1 connection; req/s ratio against REST plaintext open`, go, headline(go, o))
        rows.add('gRPC, TLS + JWT', 'the TLS + JWT gateway over gRPC, the token as call metadata; req/s ratio against REST plaintext open', gg, { ...headline(gg, o), vs_grpc_open: gg.throughput / go.throughput })
      })
    } finally {
      await Promise.all([open.stop(), tlsOnly.stop(), guarded.stop()])
      pki.remove() // the CA's private key goes with the run
    }
    return {
      id: this.id,
      title: this.title,
      status: 'ok',
      baseline: 'the same single-model ensemble (cancer_logreg, inline) served plaintext and open, same run',
      variants: rows.variants(),
      targets: [
        target('TLS + JWT throughput ≥ 0.8× plaintext open', 'rps_ratio', rows.summary('TLS + JWT', 'rps_ratio'), '>=', 0.8, () => {
          const tlsRatio = rows.summary('TLS, open', 'rps_ratio')?.median
          return (
            `TLS alone gives ${tlsRatio?.toFixed(2) ?? '?'}× of plaintext: encrypting each response and decrypting each request on the one ` +
            `event loop. The JWT is verified once per token (then a cache hit by the header's text), so what auth adds per request is a ` +
            `Map lookup, a scope check and the token bucket. On 2 cores the load generator competes with the gateway for CPU.`
          )
        }),
      ],
      notes: [
        grpc
          ? 'gRPC rows: ghz, one after the other after the REST rows of each repetition (ghz cannot take turns with autocannon), against the open and the TLS + JWT gateways\'s gRPC listeners; "req/s vs gRPC plaintext open" is what TLS and the token cost a gRPC client. The gRPC scenario (7) gives ghz\'s own ceiling on this box.'
          : `gRPC rows: not run (${String(ghz)}).`,
        `Closed loop: ${ctx.connections} kept-alive connections per slice (the four rows take turns in ${ctx.sliceS}-s slices; TLS handshakes happen once per connection and slice, not per request).`,
        'refused (401): the guard runs in fastify\'s onRequest hook, before the body is read; us_per_refusal is wall time per refusal at saturation, an upper bound on the gateway CPU a refusal costs (the load generator shares the machine).',
      ],
    }
  },
}
