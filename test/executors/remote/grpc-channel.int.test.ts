// The remote members' gRPC client (src/executors/remote/grpc-channel.ts) against a node:http2
// server playing the upstream: what it sends, each way a call can end, and a connection
// that goes away (restart, GOAWAY) or has carried its streams replaced at the next call.
// Its TLS is tested in tls.int.test.ts (a TLS upstream over gRPC); the connect timeout and
// keepalive in grpc-channel-liveness.int.test.ts.
import { once } from 'node:events'
import { constants, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import { afterEach, describe, expect, it } from 'vitest'
import { GrpcCode } from '../../../src/executors/remote/grpc-status.ts'
import { frame } from '../../api/grpc/raw-call.ts'
import { answer, call, channelTo, closeAll, failure, openChannel, upstream } from './h2-upstream.ts'

afterEach(closeAll)

describe('GrpcChannel', () => {
  it('sends one framed message with the gRPC headers and the metadata, and returns the answer message', async () => {
    let seen: { headers: IncomingHttpHeaders; body: Buffer } | undefined
    const { port } = await upstream((stream, headers, body) => {
      seen = { headers, body }
      answer(Buffer.from('pong'))(stream, headers, body)
    })
    const message = await call(channelTo(port), 250, undefined, { 'x-api-key': 'k1' })
    expect(message.toString()).toBe('pong')
    expect(seen!.body).toEqual(frame(Buffer.from('ping')))
    expect(seen!.headers).toMatchObject({ ':method': 'POST', ':path': '/test.Service/Call', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '250m', 'x-api-key': 'k1' })
    expect(seen!.headers['user-agent']).toMatch(/^specserve\/\d+\.\d+\.\d+/)
  })

  it("takes an upstream's status from a trailers-only answer, its message percent-decoded", async () => {
    const { port } = await upstream((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(GrpcCode.INVALID_ARGUMENT), 'grpc-message': 'bad%20input%3A%20x' }, { endStream: true })
    })
    const err = await failure(call(channelTo(port)))
    expect(err).toMatchObject({ code: GrpcCode.INVALID_ARGUMENT, details: 'bad input: x', local: false })
  })

  it('maps an HTTP status without a gRPC status as the spec does (503: UNAVAILABLE)', async () => {
    const { port } = await upstream((stream) => stream.respond({ ':status': 503 }, { endStream: true }))
    expect(await failure(call(channelTo(port)))).toMatchObject({ code: GrpcCode.UNAVAILABLE, local: false })
  })

  it('refuses an answer over its receive limit from its length prefix alone, and cancels the stream', async () => {
    let cancelled: Promise<unknown> | undefined
    const { port } = await upstream((stream) => {
      cancelled = once(stream, 'aborted')
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
      const prefix = Buffer.alloc(5)
      prefix.writeUInt32BE(2048, 1)
      stream.write(prefix) // and nothing more: the client must not wait for the rest
    })
    const err = await failure(call(channelTo(port, 1024)))
    expect(err).toMatchObject({ code: GrpcCode.RESOURCE_EXHAUSTED, details: 'Received message larger than max (2048 vs 1024)', local: true })
    await cancelled
  })

  it('refuses a second message in a unary answer as it comes, without buffering what follows', async () => {
    const { port } = await upstream((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
      stream.write(Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two'))])) // and the stream stays open
    })
    expect(await failure(call(channelTo(port)))).toMatchObject({ code: GrpcCode.UNIMPLEMENTED, details: 'more than one message in a unary answer' })
  })

  it('takes an answer split over many DATA frames, and an empty message', async () => {
    const big = Buffer.alloc(100_000, 7)
    const { port } = await upstream((stream, headers, body) => answer(headers[':path'] === '/test.Service/Empty' ? Buffer.alloc(0) : big)(stream, headers, body))
    const channel = channelTo(port, 200_000)
    expect((await call(channel)).equals(big)).toBe(true)
    expect((await channel.call('/test.Service/Empty', Buffer.from('ping'), {}, 5_000, new AbortController().signal)).length).toBe(0)
  })

  it('tells a stream the upstream reset from a connection that went away', async () => {
    const { port } = await upstream((stream, headers) => {
      const how = headers['x-how']
      if (how === 'internal') return stream.close(constants.NGHTTP2_INTERNAL_ERROR)
      if (how === 'refused') return stream.close(constants.NGHTTP2_REFUSED_STREAM)
      if (how === 'no-status') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
        return stream.end(frame(Buffer.from('x')))
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
      // The connection itself, not the session: a session's destroy() would reset the stream first.
      if (how === 'dropped') stream.session!.socket.destroy()
      else stream.session!.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM)
    })
    const how = (value: string) => failure(call(channelTo(port), 5_000, undefined, { 'x-how': value }))
    expect(await how('internal')).toMatchObject({ code: GrpcCode.INTERNAL, local: false })
    expect(await how('refused')).toMatchObject({ code: GrpcCode.UNAVAILABLE, local: false })
    expect(await how('no-status')).toMatchObject({ code: GrpcCode.INTERNAL, details: 'stream ended without a gRPC status' })
    expect(await how('dropped')).toMatchObject({ code: GrpcCode.UNAVAILABLE, local: false })
    expect(await how('calm')).toMatchObject({ code: GrpcCode.UNAVAILABLE, local: false })
  })

  it('refuses an answer that is not gRPC (a 200 with another content-type)', async () => {
    const { port } = await upstream((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/html' })
      stream.end('<html></html>')
    })
    expect(await failure(call(channelTo(port)))).toMatchObject({ code: GrpcCode.UNKNOWN, details: 'not a gRPC answer (content-type "text/html")' })
  })

  it('refuses calls once closed', async () => {
    const { port } = await upstream(answer(Buffer.from('x')))
    const channel = channelTo(port)
    await call(channel)
    channel.close()
    expect(await failure(call(channel))).toMatchObject({ code: GrpcCode.UNAVAILABLE, details: 'channel closed' })
  })

  it('moves to a new connection once one has carried its streams', async () => {
    const seen: Http2Session[] = []
    const { port } = await upstream((stream, headers, body) => {
      seen.push(stream.session!)
      answer(Buffer.from('x'))(stream, headers, body)
    })
    const channel = openChannel({ origin: `http://127.0.0.1:${port}`, maxResponseBytes: 1024, streamsPerConnection: 2 })
    for (let i = 0; i < 3; i++) await call(channel)
    expect([seen[1] === seen[0], seen[2] === seen[0]]).toEqual([true, false])
  })

  it('lets a call made while the connection is still being opened finish when the channel is closed at once', async () => {
    const { port } = await upstream(answer(Buffer.from('first')))
    const channel = channelTo(port)
    const pending = call(channel) // the connection opens asynchronously: it is still connecting here
    channel.close()
    expect((await pending).toString()).toBe('first')
  })

  it('lets calls out on a connection finish after it is rotated out or the channel is closed', async () => {
    const held: ServerHttp2Stream[] = []
    const heldOn: Http2Session[] = []
    let reached!: () => void
    let arrived = new Promise<void>((resolve) => (reached = resolve))
    const { port } = await upstream((stream, headers, body) => {
      if (headers['x-hold'] === undefined) return answer(Buffer.from('now'))(stream, headers, body)
      held.push(stream)
      heldOn.push(stream.session!)
      reached()
    })
    const channel = openChannel({ origin: `http://127.0.0.1:${port}`, maxResponseBytes: 1024, streamsPerConnection: 1 })
    const first = call(channel, 5_000, undefined, { 'x-hold': '1' })
    await arrived
    arrived = new Promise<void>((resolve) => (reached = resolve))
    // The next call opens a new connection (one stream each); the first is still answered on the old one.
    expect((await call(channel)).toString()).toBe('now')
    const second = call(channel, 5_000, undefined, { 'x-hold': '1' })
    await arrived
    channel.close()
    for (const [i, stream] of held.entries()) answer(Buffer.from(`held ${i}`))(stream, {}, Buffer.alloc(0))
    expect([(await first).toString(), (await second).toString()]).toEqual(['held 0', 'held 1'])
    expect(heldOn[0] === heldOn[1]).toBe(false)
  })

  it('ends a call at its own deadline when the upstream never answers, and cancels the stream', async () => {
    let reset: Promise<unknown> | undefined
    const { port } = await upstream((stream) => {
      reset = once(stream, 'aborted')
    })
    const err = await failure(call(channelTo(port), 50))
    expect(err).toMatchObject({ code: GrpcCode.DEADLINE_EXCEEDED, local: true })
    await reset
  })

  it("rejects with the signal's reason when it fires, and the upstream sees the call go away", async () => {
    let reached!: () => void
    const arrived = new Promise<void>((resolve) => (reached = resolve))
    let reset: Promise<unknown> | undefined
    const { port } = await upstream((stream) => {
      reset = once(stream, 'aborted')
      reached()
    })
    const ac = new AbortController()
    const pending = call(channelTo(port), 5_000, ac.signal)
    await arrived
    const reason = new Error('decided')
    ac.abort(reason)
    await expect(pending).rejects.toBe(reason)
    await reset
  })

  it('says UNAVAILABLE when nothing listens', async () => {
    const { server, port } = await upstream(answer(Buffer.from('x')))
    await new Promise((resolve) => server.close(resolve))
    expect(await failure(call(channelTo(port)))).toMatchObject({ code: GrpcCode.UNAVAILABLE, local: false })
  })

  it('connects again at the next call after the upstream restarts', async () => {
    const first = await upstream(answer(Buffer.from('one')))
    const channel = channelTo(first.port)
    expect((await call(channel)).toString()).toBe('one')
    const closed = new Promise((resolve) => first.server.close(resolve))
    for (const s of first.sessions) s.destroy()
    await closed
    await upstream(answer(Buffer.from('two')), first.port)
    // The first call may still meet the old connection, unless its close was seen already: then it is UNAVAILABLE, and the next is answered.
    const again = await call(channel).catch(async (err: unknown) => {
      expect(err).toMatchObject({ code: GrpcCode.UNAVAILABLE })
      return call(channel)
    })
    expect(again.toString()).toBe('two')
  })

  it('opens a new connection for the calls after a GOAWAY, and the call it let finish is answered', async () => {
    let held: ServerHttp2Stream | undefined
    let heldOn: Http2Session | undefined
    let nextOn: Http2Session | undefined
    let reached!: () => void
    const arrived = new Promise<void>((resolve) => (reached = resolve))
    const { port } = await upstream((stream, headers, body) => {
      if (held !== undefined) {
        nextOn = stream.session
        return answer(Buffer.from('new'))(stream, headers, body)
      }
      held = stream
      heldOn = stream.session
      reached()
    })
    const channel = channelTo(port)
    const first = call(channel)
    await arrived
    // The first call's stream is the last this connection takes; its answer comes after the GOAWAY, so the client has read the GOAWAY by then.
    heldOn!.goaway(constants.NGHTTP2_NO_ERROR, held!.id!)
    answer(Buffer.from('held'))(held!, {}, Buffer.alloc(0))
    expect((await first).toString()).toBe('held')
    const next = call(channel)
    expect((await next).toString()).toBe('new')
    expect(nextOn).toBeDefined()
    expect(nextOn).not.toBe(heldOn)
  })
})
