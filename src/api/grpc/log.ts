// grpc-js writes its own log lines to stderr (`E No address added out of total 1 resolved`
// before the gateway's one-line `cannot listen for gRPC` error), outside the JSON log. They go
// into the gateway's log at debug: what they say that matters, the gateway reports itself (a
// failed bind, a refused call), and LOG_LEVEL=debug shows them when one needs grpc-js's view.
import { setLogger } from '@grpc/grpc-js'

export interface DebugLog {
  debug(obj: object, msg: string): void
}

export function routeGrpcLog(log: DebugLog): void {
  const line = (...args: unknown[]): void => log.debug({ from: 'grpc-js' }, args.map((arg) => (typeof arg === 'string' ? arg : String(arg))).join(' '))
  setLogger({ error: line, info: line, debug: line })
}
