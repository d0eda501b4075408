// grpc-js writes its own log lines to stderr (`E No address added out of total 1 resolved`
// before the gateway's one-line `cannot listen for gRPC` error), outside the JSON log: the
// gateway's server and the remote executors' clients alike. They go into the gateway's log
// with their severity, marked as grpc-js's (GRPC_VERBOSITY and GRPC_TRACE still choose which).
import { setLogger } from '@grpc/grpc-js'
import type { DiagLog } from '../../telemetry/diag.ts'

export function routeGrpcLog(log: Pick<DiagLog, 'warn' | 'info' | 'debug'>): void {
  const text = (args: unknown[]): string => args.map(String).join(' ')
  const from = { from: 'grpc-js' }
  // Its "errors" are what it survived and reports to its caller too (a bind that failed, a call
  // refused): a warning here, the caller's own line says what it means.
  setLogger({ error: (...args: unknown[]) => log.warn(from, text(args)), info: (...args: unknown[]) => log.info(from, text(args)), debug: (...args: unknown[]) => log.debug(from, text(args)) })
}
