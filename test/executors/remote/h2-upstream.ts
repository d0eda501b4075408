// node:http2 servers playing a gRPC upstream for the remote gRPC channel's tests
// (grpc-channel*.int.test.ts), and what each test opened, closed by closeAll.
import { once } from 'node:events'
import { createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { expect } from 'vitest'
import { GrpcChannel, type ChannelOptions } from '../../../src/executors/remote/grpc-channel.ts'
import { GrpcCallError } from '../../../src/executors/remote/grpc-status.ts'
import { frame } from '../../api/grpc/raw-call.ts'

export type Handler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: Buffer) => void

/** Answers `message` with status OK, as a gRPC server does. */
export const answer =
  (message: Buffer): Handler =>
  (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
    stream.end(frame(message))
  }

const servers: Http2Server[] = []
const netServers: NetServer[] = []
const sockets: Socket[] = []
const channels: GrpcChannel[] = []

/** A server on `port` (0: any) calling `handler` with each call's full request; its sessions, to end them. */
export async function upstream(handler: Handler, port = 0): Promise<{ server: Http2Server; port: number; sessions: Set<Http2Session> }> {
  const server = createServer()
  const sessions = new Set<Http2Session>()
  server.on('session', (s) => {
    sessions.add(s)
    s.once('close', () => sessions.delete(s))
  })
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined)
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.once('end', () => handler(stream, headers, Buffer.concat(chunks)))
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  servers.push(server)
  return { server, port: (server.address() as AddressInfo).port, sessions }
}

/** An empty HTTP/2 SETTINGS frame: what a server sends first. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])

/**
 * A TCP server that accepts and then says nothing (a stopped process's kernel still accepts),
 * or only its HTTP/2 SETTINGS (`settings`): no answer, no ping acknowledgement. Its port.
 */
export async function silentUpstream(settings = false): Promise<number> {
  const silent = createNetServer((socket) => {
    sockets.push(socket)
    socket.on('error', () => undefined)
    if (settings) socket.write(EMPTY_SETTINGS)
  })
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  netServers.push(silent)
  return (silent.address() as AddressInfo).port
}

/** A channel closed by closeAll. */
export function openChannel(options: ChannelOptions): GrpcChannel {
  const made = new GrpcChannel(options)
  channels.push(made)
  return made
}

export const channelTo = (port: number, maxResponseBytes = 1024): GrpcChannel => openChannel({ origin: `http://127.0.0.1:${port}`, maxResponseBytes })

export const call = (to: GrpcChannel, timeoutMs = 5_000, signal: AbortSignal = new AbortController().signal, headers: Record<string, string> = {}) =>
  to.call('/test.Service/Call', Buffer.from('ping'), headers, timeoutMs, signal)

export async function failure(pending: Promise<unknown>): Promise<GrpcCallError> {
  const err = await pending.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(GrpcCallError)
  return err as GrpcCallError
}

/** Closes the channels, then the sockets and servers a test opened. */
export async function closeAll(): Promise<void> {
  for (const c of channels.splice(0)) c.close()
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all([...servers.splice(0), ...netServers.splice(0)].map((s) => new Promise((resolve) => s.close(resolve))))
}
