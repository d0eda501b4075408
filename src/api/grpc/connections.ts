// grpc-js has no bound on how many connections its listeners take: a connection flood would
// hold sockets and HTTP/2 sessions until the process runs out of file descriptors. Node's
// own bound does it (`maxConnections` on each listening server: a connection past it is
// closed as it arrives, before TLS or HTTP/2), set on every server grpc-js creates. grpc-js
// makes them in a private method (server.js `createHttp2Server`, 1.14): hooked once, checked
// here; without it the listeners are unbounded, as grpc-js's own are.
import type { Server } from '@grpc/grpc-js'
import type { Server as NetServer } from 'node:net'

type CreateListener = (this: Server, ...args: unknown[]) => NetServer

/**
 * Bounds the connections of each listener `server` creates from now on, handing each to
 * `created` (to count what it drops); false when this grpc-js does not let it.
 */
export function limitConnections(server: Server, max: number, created: (listener: NetServer) => void): boolean {
  const internals = server as unknown as { createHttp2Server?: CreateListener }
  const create = internals.createHttp2Server
  if (typeof create !== 'function') return false
  internals.createHttp2Server = function (this: Server, ...args: unknown[]): NetServer {
    const listener = create.apply(this, args)
    listener.maxConnections = max
    created(listener)
    return listener
  }
  return true
}
