// The gRPC listener takes no more than server.grpc_max_connections connections at once
// (src/api/grpc/connections.ts): one past it is closed as it arrives, before HTTP/2 says a
// word, and counted; the listener takes connections again once others have gone.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ListenerDrops } from '../../../src/listener-drops.ts'
import { startHarness, TEST_CONFIG, unary, xInput, type Harness } from './harness.ts'

const MAX = 5
let h: Harness
const warnings: unknown[] = []

beforeAll(async () => {
  const log = { info() {}, warn: (obj: object, msg: string) => void warnings.push({ ...obj, msg }), error() {} }
  h = await startHarness(TEST_CONFIG.replace('server: { max_in_flight: 6,', `server: { max_in_flight: 6, grpc_max_connections: ${MAX},`), log)
})
afterAll(async () => h?.close())

/** A raw connection that keeps what the server sends (its HTTP/2 SETTINGS, if it took the connection). */
async function raw(): Promise<{ socket: Socket; received: () => number; closed: Promise<unknown> }> {
  const [host, port] = h.address.split(':') as [string, string]
  const socket = connect(Number(port), host)
  let bytes = 0
  socket.on('data', (b: Buffer) => (bytes += b.length))
  socket.on('error', () => undefined) // a reset is one way of being closed
  const closed = once(socket, 'close')
  await once(socket, 'connect')
  return { socket, received: () => bytes, closed }
}

describe('server.grpc_max_connections', () => {
  it('closes a connection past it as it arrives, and the listener recovers', async () => {
    const held = await Promise.all(Array.from({ length: MAX }, raw))
    try {
      const extra = await raw()
      await extra.closed
      expect(extra.received()).toBe(0)
      expect(h.frontend.connectionLimit).toBe(true)
      expect(ListenerDrops.of(h.gateway).status()).toEqual({ dropped: { rest: 0, grpc: 1 } })
      expect(warnings).toEqual([{ listener: 'grpc', limit: MAX, dropped_total: 1, msg: expect.stringMatching(/gRPC listener is full \(server\.grpc_max_connections: 5\)/) }])
      // The ones it took are HTTP/2 sessions: the server's SETTINGS came on each (a dropped one would end the wait too, and fail here).
      for (const c of held) if (c.received() === 0) await Promise.race([once(c.socket, 'data'), c.closed])
      expect(held.map((c) => c.received() > 0)).toEqual(held.map(() => true))
    } finally {
      for (const c of held) c.socket.destroy()
      await Promise.all(held.map((c) => c.closed))
    }
    // The server counts a connection gone a moment after the client does: the client waits until a connection is taken, rather than fail on one dropped.
    await new Promise<void>((resolve, reject) => h.gatewayClient.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())))
    const answer = await unary(h.gatewayClient, 'Predict', { ensemble: 'fallback', budget_ms: 50, inputs: xInput })
    expect(answer).toMatchObject({ ensemble: 'fallback' })
  })
})
