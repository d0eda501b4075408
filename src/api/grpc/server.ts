// One gRPC server for both services (specserve.v1.Gateway and the V2
// inference.GRPCInferenceService), plus server reflection and grpc.health.v1, so
// `grpcurl -plaintext host:8081 list` works without proto files.
import { Server, ServerCredentials, type ServerWritableStream, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js'
import { HealthImplementation, type ServingStatus } from 'grpc-health-check'
import type { GatewayConfig } from '../../config/load.ts'
import type { Gateway } from '../../gateway.ts'
import type { MethodCodec } from './call.ts'
import { codeMetadata, shuttingDown } from './status.ts'
import { openCalls } from './open-calls.ts'
import { gatewayService } from './gateway-service.ts'
import { inferenceService } from './inference-service.ts'
import { codecOf, servedService } from './services.ts'
import { installFastUnary, type FastMethod } from './fast-unary.ts'
import { CompressedCalls } from './compressed-calls.ts'
import { readLimit, streamingMethods } from './read-limit.ts'
import { limitConnections } from './connections.ts'
import { GATEWAY_SERVICE, INFERENCE_SERVICE, reflectedDefinition } from '../../proto/index.ts'
import { addReflection } from './reflection.ts'
import { strictService } from './standard-services.ts'
import { guardedServer, guardHandler } from '../../security/grpc.ts'
import { TlsFiles, WatchedServerCredentials } from '../../security/tls.ts'
import { ListenerDrops } from '../../listener-drops.ts'
import { silentLogger, type Logger } from '../../types.ts'

export interface GrpcFrontend {
  readonly server: Server
  /** The certificate files (server.tls), null when plaintext: 'reloaded' and 'rejected' say what became of a change. */
  readonly tls: TlsFiles | null
  /** Whether plain Predict and ModelInfer calls are answered without grpc-js's per-call machinery (fast-unary.ts), and requests are read-limited. */
  readonly fastUnary: boolean
  /** Whether grpc_max_connections bounds the listeners (connections.ts). */
  readonly connectionLimit: boolean
  /** Binds and starts serving; resolves with the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>
  /** Health service status for "" and both services: SERVING once the gateway is ready for traffic (as /readyz), NOT_SERVING when draining. */
  setServing(serving: boolean): void
  /** Lets in-flight calls finish for up to `graceMs`, then cuts the rest off. */
  close(graceMs?: number): Promise<void>
}

const HEALTH_NAMES = ['', GATEWAY_SERVICE, INFERENCE_SERVICE] as const

/** `log`: where a missing grpc-js hook, and connections dropped by a full listener, are reported. */
export function buildGrpcServer(gateway: Gateway, config: GatewayConfig, log: Logger = silentLogger): GrpcFrontend {
  const server = new Server({
    // Oversize messages are refused with RESOURCE_EXHAUSTED before any handler runs (by grpc-js,
    // or with `specserve-code: PAYLOAD_TOO_LARGE` where fast-unary.ts and stream-messages.ts see them first).
    'grpc.max_receive_message_length': config.server.grpc_max_receive_bytes,
    'grpc.max_send_message_length': config.server.grpc_max_send_bytes,
    // Idle connections go (GOAWAY; clients reconnect when they next call); calls per connection are bounded.
    'grpc.max_connection_idle_ms': config.server.grpc_idle_timeout_ms,
    'grpc.max_concurrent_streams': config.server.grpc_max_concurrent_streams,
    // Channelz stays on (grpc-js's default) although we serve no channelz service: without it
    // grpc-js does not list its connections, so forceShutdown() cuts none of them and a
    // stream left open (PredictStream, a health Watch) holds close() forever. Its cost is
    // within noise on unary predicts (ghz, 16 workers, 2 cores: ~86 µs of server CPU per
    // predict with it, ~90 µs without, runs varying by ±8%).
  })
  const max = config.server.grpc_max_connections
  const drops = ListenerDrops.of(gateway)
  if (log !== silentLogger) drops.logTo(log)
  const connectionLimit = limitConnections(server, max, (listener) => drops.watch(listener, 'grpc', max))
  if (!connectionLimit) log.warn({}, 'this grpc-js has no createHttp2Server to hook: server.grpc_max_connections is not applied')
  // Before any service is added: which methods take or give a stream of messages (the read limit times each message there).
  const streaming = streamingMethods(server)
  // With an `auth` section every service's handlers ask the policy first (src/security/grpc.ts).
  const services = guardedServer(server, gateway, log === silentLogger ? undefined : log) as Server
  const gatewayImpl = gatewayService(gateway)
  const inferenceImpl = inferenceService(gateway)
  // The hot methods' messages are coded by hand, the rest by proto-loader (services.ts).
  services.addService(servedService(GATEWAY_SERVICE), gatewayImpl)
  services.addService(servedService(INFERENCE_SERVICE), inferenceImpl)
  // Their plain unary calls skip grpc-js's per-call machinery (fast-unary.ts): same codecs, same handlers, same guard.
  const fast = (name: string, svc: string, codec: MethodCodec<unknown, never>, impl: UntypedServiceImplementation): [string, FastMethod] => {
    const path = `/${svc}/${name}`
    return [path, { ...codec, handler: guardHandler(gateway, path, impl[name] as unknown as FastMethod['handler']) }]
  }
  const fastUnary = installFastUnary(
    server,
    new Map([fast('Predict', GATEWAY_SERVICE, codecOf(GATEWAY_SERVICE, 'Predict'), gatewayImpl), fast('ModelInfer', INFERENCE_SERVICE, codecOf(INFERENCE_SERVICE, 'ModelInfer'), inferenceImpl)]),
    {
      maxReceiveBytes: config.server.grpc_max_receive_bytes,
      maxSendBytes: config.server.grpc_max_send_bytes,
      read: readLimit(config.server.request_timeout_ms),
      streaming,
      // The codes of the refusals answered on a call's stream (grpc-js's own carry none): built once.
      tooLarge: codeMetadata('PAYLOAD_TOO_LARGE'),
      deadlineExceeded: codeMetadata('DEADLINE_EXCEEDED'),
      compressed: new CompressedCalls(config.server.grpc_max_compressed_calls),
    },
  )
  if (!fastUnary) log.warn({}, 'this grpc-js has not the server internals fast-unary.ts hooks: every call goes through grpc-js, and a request is bounded only by its deadline, not server.request_timeout_ms')
  addReflection(services, reflectedDefinition)
  const initial: ServingStatus = gateway.readyForTraffic ? 'SERVING' : 'NOT_SERVING'
  const health = new HealthImplementation(Object.fromEntries(HEALTH_NAMES.map((name) => [name, initial])))
  // Watches end at shutdown, once they have said NOT_SERVING (open-calls.ts): open, each held the stop to the grace's end.
  // Its requests' strings are checked for UTF-8, as ours are (standard-services.ts).
  health.addToServer({
    addService: (definition: ServiceDefinition, impl: UntypedServiceImplementation) =>
      services.addService(...strictService(definition, {
        ...impl,
        watch: (call: ServerWritableStream<unknown, unknown>) => {
          ;(impl.watch as (call: ServerWritableStream<unknown, unknown>) => void)(call)
          const untrack = openCalls(gateway).track({ drain: () => call.emit('error', shuttingDown('watch again')) })
          call.once('close', untrack)
          call.once('cancelled', untrack)
        },
      })),
  } as unknown as Server)

  // server.tls: the same files as REST, followed as they change (src/security/tls.ts).
  const tls = config.server.tls ? new TlsFiles(config.server.tls, config.server.headers_timeout_ms) : null
  const credentials = tls ? new WatchedServerCredentials(tls) : ServerCredentials.createInsecure()

  return {
    server,
    tls,
    fastUnary,
    connectionLimit,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound)))
      })
    },
    setServing(serving) {
      for (const name of HEALTH_NAMES) health.setStatus(name, serving ? 'SERVING' : 'NOT_SERVING')
    },
    close(graceMs = 10_000) {
      return new Promise<void>((resolve) => {
        let closed = false
        const finish = (): void => {
          if (closed) return
          closed = true
          clearTimeout(force)
          tls?.close()
          resolve()
        }
        // After the grace every connection is cut, and close() is done then: it does not
        // wait on tryShutdown's callback, which never comes while a session stays open.
        const force = setTimeout(() => {
          log.warn({ grace_ms: graceMs }, 'grace period over: cutting the gRPC calls still open (their predicts are cancelled)')
          server.forceShutdown()
          finish()
        }, graceMs)
        // Streams end as soon as their answers are out, Watches at once (NOT_SERVING already sent), both UNAVAILABLE.
        openCalls(gateway).drain()
        server.tryShutdown(finish)
      })
    },
  }
}
