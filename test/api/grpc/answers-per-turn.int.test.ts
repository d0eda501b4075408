// A burst of Predict calls on one HTTP/2 connection (how gRPC clients talk) is answered as it
// runs, not all at its end: node:http2 sends what a turn of the event loop wrote only when
// the loop turns, so the inline lane lets it turn every few runs while an answer waits
// (src/unsent-answers.ts). Seen from the client: its first answers come while most of the
// burst has still to run.
import * as grpc from '@grpc/grpc-js'
import { once } from 'node:events'
import { connect, type ClientHttp2Session } from 'node:http2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { samples } from '../../helpers.ts'
import { startHarness, type Harness } from './harness.ts'
import { frame } from './raw-call.ts'

const BURST = 64

const CONFIG = `
server: { max_in_flight: ${BURST} }
models:
  logreg: { kind: onnx, path: ../models/cancer_logreg.onnx, placement: inline }
ensembles:
  logreg: { strategy: deadline-fallback, models: [logreg], budget_ms: { default: 10000, max: 10000 } }
`

describe('a burst of gRPC predicts on one connection', () => {
  let h: Harness
  let session: ClientHttp2Session
  let request: Buffer

  beforeAll(async () => {
    h = await startHarness(CONFIG)
    session = connect(`http://${h.address}`)
    await once(session, 'remoteSettings')
    const serialize = (h.gatewayClient.Predict as unknown as { requestSerialize: (m: object) => Buffer }).requestSerialize
    request = frame(serialize({ ensemble: 'logreg', inputs: { input: { fp32_data: samples('cancer').rows[0], shape: [1, 30] } } }))
  })
  afterAll(async () => {
    session?.close()
    await h?.close()
  })

  it('gets its first answers while most of it has still to run, and every answer', async () => {
    let decided = 0
    h.gateway.hooks.onResult = () => void decided++
    const decidedAtFirstAnswer: number[] = []
    // Written in one turn: the client's session sends them together, and the gateway reads them together.
    const calls = Array.from({ length: BURST }, () => {
      const stream = session.request({ ':method': 'POST', ':path': '/specserve.v1.Gateway/Predict', 'content-type': 'application/grpc', te: 'trailers' })
      stream.once('response', () => decidedAtFirstAnswer.push(decided))
      stream.resume()
      stream.end(request)
      return new Promise<string | undefined>((resolve) => stream.once('trailers', (t) => resolve(t['grpc-status'] as string | undefined)))
    })
    const statuses = await Promise.all(calls)
    h.gateway.hooks.onResult = undefined
    expect(statuses).toEqual(Array<string>(BURST).fill(String(grpc.status.OK)))
    // All at the end would be BURST: every predict decided before the first answer left.
    expect(Math.min(...decidedAtFirstAnswer)).toBeLessThanOrEqual(BURST / 2)
  })
})
