// The policy on the gRPC listener: every service added to the server (specserve.v1,
// inference V2, health, reflection) gets its handlers wrapped, each asking the guard with
// the call's `authorization` metadata before it runs, the same check the REST routes make.
// An open gateway adds its services unwrapped: its calls pay for none of this.
import type { Metadata, Server, ServiceDefinition, UntypedHandleCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import type { PeerCertificate } from 'node:tls'
import { errorStatus } from '../api/grpc/status.ts'
import { GatewayError } from '../errors.ts'
import type { Gateway } from '../gateway.ts'
import type { Logger } from '../types.ts'
import type { Principal } from './guard.ts'
import { certificateSubject } from './peer.ts'
import { Policy } from './policy.ts'
import type { Access } from './scopes.ts'

const PRINCIPAL = Symbol('specserve.principal')
const CREDENTIALS = Symbol('specserve.credentials')

/** What a guarded call presented, kept so a stream can ask again for each of its messages. */
interface Credentials {
  readonly policy: Policy
  readonly authorization: string | undefined
  readonly subject: string | undefined
}

type Guarded = { [PRINCIPAL]?: Principal; [CREDENTIALS]?: Credentials }

/** The caller of a call the guard let through; undefined on an open gateway. */
export const principalOf = (call: object): Principal | undefined => (call as Guarded)[PRINCIPAL]

/**
 * Asks the guard again, with the credentials the call opened with, for one predict on
 * `ensemble` (a message of a predict stream): the policy as it is now (a key removed by a
 * reload, a JWT past its exp), the ensemble's scope and a token of the rate limit. A
 * refusal is counted as a unary one is. Undefined on an open gateway.
 */
export function recheck(call: object, ensemble: string): Principal | Promise<Principal> | undefined {
  const creds = (call as Guarded)[CREDENTIALS]
  if (creds === undefined) return undefined
  const count = (err: unknown): never => {
    creds.policy.refusals.count('grpc', err)
    throw err
  }
  try {
    const verdict = creds.policy.current.check(creds.authorization, 'predict', ensemble, creds.subject)
    return verdict instanceof Promise ? verdict.catch(count) : verdict
  } catch (err) {
    return count(err)
  }
}

const METHOD_ACCESS: Readonly<Record<string, Access>> = {
  '/specserve.v1.Gateway/Predict': 'predict',
  // Any credentials open the stream; each message is then asked for its own ensemble.
  '/specserve.v1.Gateway/PredictStream': 'predict',
  '/specserve.v1.Gateway/ListEnsembles': 'read',
  '/specserve.v1.Gateway/GetEnsemble': 'read',
  '/specserve.v1.Gateway/GetModel': 'read',
  '/inference.GRPCInferenceService/ModelInfer': 'predict',
  '/inference.GRPCInferenceService/ModelStreamInfer': 'predict',
  '/inference.GRPCInferenceService/ServerLive': 'health',
  '/inference.GRPCInferenceService/ServerReady': 'health',
  '/inference.GRPCInferenceService/ServerMetadata': 'read',
  '/inference.GRPCInferenceService/ModelMetadata': 'read',
  '/inference.GRPCInferenceService/ModelReady': 'read',
}

/** What a method needs, by its path. A method not named here needs `admin` (closed until decided). */
export function methodAccess(path: string): Access {
  const known = METHOD_ACCESS[path]
  if (known) return known
  if (path.startsWith('/grpc.health.v1.Health/')) return 'health'
  if (path.startsWith('/grpc.reflection.')) return 'read'
  return 'admin'
}

interface CallLike {
  readonly metadata: Metadata
  readonly request?: unknown
  emit(event: 'error', err: object): boolean
  /** The connection's verified client certificate (grpc-js: only when the handshake verified it). */
  getAuthContext?(): { readonly sslPeerCertificate?: PeerCertificate }
}

type AnyHandler = (call: CallLike, callback?: (err: object | null) => void) => void

/**
 * The ensemble a predict names: specserve.v1 `ensemble`, V2 `model_name`, as decoded (an empty
 * message names "", which is asked for as any other name). Undefined when there is no message
 * to read it from: a stream (each message is asked for its own), or one that did not decode.
 */
function ensembleOf(request: unknown): string | undefined {
  const r = request as { ensemble?: unknown; model_name?: unknown } | undefined
  const name = r?.ensemble ?? r?.model_name
  return typeof name === 'string' ? name : undefined
}

function wrap(policy: Policy, path: string, handler: AnyHandler): AnyHandler {
  const access = methodAccess(path)
  const refuse = (call: CallLike, callback: ((err: object | null) => void) | undefined, err: unknown): void => {
    policy.refusals.count('grpc', err)
    const status = errorStatus(err)
    if (err instanceof GatewayError && err.code === 'RATE_LIMITED') status.metadata!.set('retry-after', String(err.details?.retry_after_s ?? 1))
    if (callback) callback(status)
    else call.emit('error', status)
  }
  return (call, callback) => {
    const values = call.metadata.get('authorization')
    const authorization = values.length > 0 ? String(values[0]) : undefined
    // A predict whose message did not decode is let through to say so, if its caller holds any
    // credentials. One that decoded is asked for the ensemble it names, "" too (an empty
    // message): its scope is checked before the name is looked up, as on REST.
    const ensemble = access === 'predict' ? ensembleOf(call.request) : ''
    let verdict: Principal | Promise<Principal>
    try {
      const guard = policy.current
      // A verified client certificate names the caller when no bearer credentials do (auth.client_certs).
      const subject = guard.namesCertificates && (authorization === undefined || authorization === '') ? (certificateSubject(call.getAuthContext?.().sslPeerCertificate) ?? undefined) : undefined
      verdict = guard.check(authorization, ensemble === undefined ? 'authenticated' : access, ensemble ?? '', subject)
      // A stream names its ensembles message by message: keep what it presented for them.
      if (ensemble === undefined) (call as Guarded)[CREDENTIALS] = { policy, authorization, subject }
    } catch (err) {
      return refuse(call, callback, err)
    }
    if (verdict instanceof Promise) {
      verdict.then(
        (principal) => {
          ;(call as Guarded)[PRINCIPAL] = principal
          handler(call, callback)
        },
        (err: unknown) => refuse(call, callback, err),
      )
      return
    }
    ;(call as Guarded)[PRINCIPAL] = verdict
    handler(call, callback)
  }
}

/** `handler` (of the method at `path`) asking the gateway's policy first; `handler` itself when the gateway is open. */
export function guardHandler<H>(gateway: Gateway, path: string, handler: H): H {
  const policy = Policy.of(gateway)
  return policy ? (wrap(policy, path, handler as unknown as AnyHandler) as unknown as H) : handler
}

/** A server whose addService wraps every handler with the gateway's policy; the server itself when the gateway is open. `log`: the policy's (its issuer's outages). */
export function guardedServer(server: Server, gateway: Gateway, log?: Logger): Pick<Server, 'addService'> {
  const policy = Policy.of(gateway, log)
  if (!policy) return server
  return {
    addService(service: ServiceDefinition, implementation: UntypedServiceImplementation) {
      const wrapped: Record<string, UntypedHandleCall> = {}
      for (const [name, method] of Object.entries(service)) {
        const handler = implementation[name] ?? implementation[method.originalName ?? name]
        if (handler) wrapped[name] = wrap(policy, method.path, handler as unknown as AnyHandler) as unknown as UntypedHandleCall
      }
      server.addService(service, wrapped)
    },
  }
}
