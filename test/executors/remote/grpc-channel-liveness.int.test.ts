// The remote gRPC channel (src/executors/remote/grpc-channel.ts) finding an upstream that
// does not answer: the connect timeout (no HTTP/2 SETTINGS), and keepalive pings, unanswered
// or held back on a connection the upstream is silent on (servers count those as strikes).
import type { Http2Session, ServerHttp2Stream } from 'node:http2'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { GrpcCode } from '../../../src/executors/remote/grpc-status.ts'
import { answer, call, closeAll, failure, openChannel, silentUpstream, upstream } from './h2-upstream.ts'

afterEach(async () => {
  vi.useRealTimers()
  await closeAll()
})

describe('GrpcChannel liveness', () => {
  it('ends a connection whose peer stops answering pings while a call is out: the call fails UNAVAILABLE', async () => {
    // Its SETTINGS, then silence: no answer, no ping acknowledgement.
    const port = await silentUpstream(true)
    const channel = openChannel({ origin: `http://127.0.0.1:${port}`, maxResponseBytes: 1024, keepalive: { everyMs: 20, timeoutMs: 30 } })
    const err = await failure(call(channel, 10_000))
    expect(err).toMatchObject({ code: GrpcCode.UNAVAILABLE, local: false })
    expect(err.details).toContain('keepalive ping unanswered for 30 ms')
  })

  // TCP accepted, then silence (a stopped process's kernel still accepts): over TLS a handshake
  // that never completes; in cleartext a connection without the upstream's HTTP/2 SETTINGS.
  it.each(['https', 'http'])('gives up a connection (%s) whose upstream sends no HTTP/2 SETTINGS within its connect timeout: the call fails UNAVAILABLE', async (scheme) => {
    const port = await silentUpstream()
    const channel = openChannel({ origin: `${scheme}://127.0.0.1:${port}`, maxResponseBytes: 1024, connectTimeoutMs: 50 })
    const err = await failure(call(channel, 10_000))
    expect(err).toMatchObject({ code: GrpcCode.UNAVAILABLE, local: false })
    expect(err.details).toContain('no HTTP/2 connection within 50 ms')
  })

  it('does not ping a connection still waiting for its SETTINGS: the connect timeout gives it up', async () => {
    const port = await silentUpstream()
    const channel = openChannel({ origin: `http://127.0.0.1:${port}`, maxResponseBytes: 1024, keepalive: { everyMs: 20, timeoutMs: 30 }, connectTimeoutMs: 300 })
    const err = await failure(call(channel, 10_000))
    expect(err).toMatchObject({ code: GrpcCode.UNAVAILABLE, local: false })
    expect(err.details).toContain('no HTTP/2 connection within 300 ms')
  })

  it('stops pinging a call the upstream is silent on after two pings, then pings at the quiet interval, and again as usual once it sends', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    let pings = 0
    let heldStream: ServerHttp2Stream | undefined
    let reached!: () => void
    const arrived = new Promise<void>((resolve) => (reached = resolve))
    const { server, port } = await upstream((stream, headers, body) => {
      if (headers['x-hold'] === undefined) return answer(Buffer.from('now'))(stream, headers, body)
      heldStream = stream
      reached()
    })
    server.on('session', (s: Http2Session) => s.on('ping', () => pings++))
    const channel = openChannel({ origin: `http://127.0.0.1:${port}`, maxResponseBytes: 1024, keepalive: { everyMs: 1_000, timeoutMs: 60_000, quietMs: 4_000 } })
    const held = call(channel, 60_000, undefined, { 'x-hold': '1' })
    await arrived
    // A call answered at once: every ping sent before it has reached the upstream by its answer (a ping goes out ahead of the frames queued after it).
    const pingsSoFar = async (): Promise<number> => {
      expect((await call(channel)).toString()).toBe('now')
      return pings
    }
    try {
      // An answer on the connection comes after the upstream's SETTINGS: the connection is open (pinged) from here.
      expect(await pingsSoFar()).toBe(0)
      vi.advanceTimersByTime(9_000) // ticks 1 and 2 ping; then one ping every 4 ticks (tick 6)
      expect(await pingsSoFar()).toBe(3)
      // That answer was data from the upstream: two pings again at the usual interval.
      vi.advanceTimersByTime(2_000)
      expect(await pingsSoFar()).toBe(5)
    } finally {
      answer(Buffer.from('held'))(heldStream!, {}, Buffer.alloc(0))
    }
    expect((await held).toString()).toBe('held')
  })
})
