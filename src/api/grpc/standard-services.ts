// The standard services the server adds beside ours, grpc.health.v1.Health (grpc-health-check)
// and server reflection (@grpc/reflection), with their requests read as ours are: a proto3
// `string` field whose bytes are not UTF-8 (a health `service`, a reflection `file_by_filename`
// or `file_containing_symbol`) is refused INVALID_ARGUMENT (`specserve-code: BAD_REQUEST`)
// naming the field (strict-strings.ts), where proto-loader alone reads it with U+FFFD in place
// of the bytes (a health Check answered NOT_FOUND, a reflection lookup of a name never sent).
// Their handlers are the packages' own, never given such a request: a unary Check is answered
// with the status, a Watch (server streaming) ends with it, and so does a reflection stream,
// at the message, after the answers to those before it.
import type { sendUnaryData, ServerDuplexStream, ServerUnaryCall, ServerWritableStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js'
import type { ServiceDefinition as LoadedServiceDefinition } from '@grpc/proto-loader'
import { answerWith, refusal, tolerantService } from './call.ts'
import { strictStrings } from './strict-strings.ts'

type Handler = (...args: never[]) => void

/**
 * A field's name as its .proto declares it. @grpc/reflection loads its proto without keepCase,
 * so its descriptors carry protobufjs's camelCase (`fileContainingSymbol`); every field of
 * reflection.proto and health.proto is lower snake_case, which that conversion turns back.
 */
const protoName = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/**
 * `definition` and `impl` as the server adds them: the requests decoded strictly, one that does
 * not decode reaching the wrapped handler (tolerantService), which answers it with the status.
 */
export function strictService(definition: ServiceDefinition, impl: UntypedServiceImplementation): [ServiceDefinition, UntypedServiceImplementation] {
  const wrapped: Record<string, Handler> = { ...(impl as Record<string, Handler>) }
  for (const [name, method] of Object.entries(definition)) {
    // grpc-js finds a handler by the method's name or its originalName (grpc-health-check's are `check`, `watch`).
    const key = name in impl ? name : method.originalName
    const handler = key === undefined ? undefined : (impl[key] as Handler | undefined)
    if (key === undefined || handler === undefined) continue
    if (!method.requestStream) {
      wrapped[key] = method.responseStream
        ? (call: ServerWritableStream<unknown, unknown>) => {
            const refused = refusal(call.request)
            if (refused) call.emit('error', refused)
            else (handler as (call: ServerWritableStream<unknown, unknown>) => void)(call)
          }
        : (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
            answerWith(call, callback, handler as (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void)
      continue
    }
    wrapped[key] = (call: ServerDuplexStream<unknown, unknown>) => {
      // Each message reaches the handler's 'data' listener through emit: a malformed one ends
      // the call instead (its earlier answers written first), and no message after it is read.
      const emit = call.emit.bind(call) as (event: string | symbol, ...args: unknown[]) => boolean
      let refused = false
      call.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
        if (event !== 'data') return emit(event, ...args)
        if (refused) return false
        const status = refusal(args[0])
        if (!status) return emit(event, ...args)
        refused = true
        return emit('error', status)
      }) as typeof call.emit
      ;(handler as (call: ServerDuplexStream<unknown, unknown>) => void)(call)
    }
  }
  const decoded = tolerantService(strictStrings(definition as unknown as LoadedServiceDefinition, protoName))
  return [decoded as unknown as ServiceDefinition, wrapped as UntypedServiceImplementation]
}
