// PredictStream backpressure: a client that sends fast but stops reading its answers. The
// server's writes back up, so it stops reading that client's messages: the predicts it
// starts (and the answers it holds) stay bounded, however many messages the client has
// queued. Once the client reads again, every message is answered.
import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { signals } from '../../starter/scripted.ts'
import { startHarness, xInput, type Harness } from './harness.ts'

const CONFIG = `
server: { max_in_flight: 100000 }
models:
  instant: { kind: scripted, label: 1 }
ensembles:
  instant: { strategy: deadline-fallback, models: [instant] }
`
const MESSAGES = 8_000

let h: Harness

beforeAll(async () => {
  h = await startHarness(CONFIG)
})
afterAll(async () => {
  signals.clear()
  await h?.close()
})

interface Reply {
  id: string
  outcome: 'response' | 'error'
}

describe('PredictStream with a client that does not read', () => {
  it('stops reading the client, keeps the predicts it starts bounded, and answers every message once the client reads', async () => {
    const started = vi.spyOn(h.gateway, 'start')
    const call = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, Reply>)(new grpc.Metadata())
    // The client takes its first answer, then stops reading (its HTTP/2 window fills up),
    // while it has queued far more messages than the server may take in meanwhile.
    const replies: Reply[] = []
    call.on('data', (r: Reply) => {
      if (replies.push(r) === 1) call.pause()
    })
    const ended = new Promise<void>((resolve, reject) => {
      call.on('end', resolve)
      call.on('error', reject)
    })
    for (let i = 0; i < MESSAGES; i++) call.write({ id: String(i), ensemble: 'instant', inputs: xInput })
    call.end()

    // A round trip on another connection between looks: once a few pass without a predict
    // started on the stream, the server has stopped reading it.
    const other = new grpc.Client(h.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) // its own connection
    const raw = (b: Buffer): Buffer => b
    const roundTrip = () =>
      new Promise((resolve, reject) => other.makeUnaryRequest('/specserve.v1.Gateway/ListEnsembles', raw, raw, Buffer.alloc(0), (err, value) => (err ? reject(err) : resolve(value))))
    const count = () => started.mock.calls.length
    let still = 0
    for (let seen = count(); still < 3; ) {
      await roundTrip()
      still = count() === seen && seen > 0 ? still + 1 : 0
      seen = count()
    }
    other.close()
    expect(count()).toBeLessThan(MESSAGES / 4)
    expect(replies).toHaveLength(1)

    call.resume()
    await ended
    expect(replies).toHaveLength(MESSAGES)
    expect(new Set(replies.map((r) => r.id)).size).toBe(MESSAGES)
    expect(replies.every((r) => r.outcome === 'response')).toBe(true)
    expect(started).toHaveBeenCalledTimes(MESSAGES)
    started.mockRestore()
  }, 60_000)
})
