// The two services as the server runs them, made in one place so that what the fuzz test
// takes for "does not decode" is the decoder the server runs.
import type { ServiceDefinition } from '@grpc/proto-loader'
import { GATEWAY_SERVICE, INFERENCE_SERVICE, service } from '../../proto/index.ts'
import { tolerantService, withCodecs, type MethodCodec } from './call.ts'
import { inferCodecs } from './infer-codec.ts'
import { predictCodecs } from './predict-codec.ts'
import { strictStrings } from './strict-strings.ts'

export type ServedName = typeof GATEWAY_SERVICE | typeof INFERENCE_SERVICE

const CODECS: Readonly<Record<ServedName, Readonly<Record<string, MethodCodec<unknown, never>>>>> = {
  [GATEWAY_SERVICE]: predictCodecs,
  [INFERENCE_SERVICE]: inferCodecs,
}

/** A hot method's hand codec (Predict, ModelInfer): what the fast unary path and the service both run. */
export const codecOf = (name: ServedName, method: string): MethodCodec<unknown, never> => CODECS[name][method]!

/**
 * The service's methods as the server decodes and encodes them: the hot methods by hand
 * (predict-codec.ts, infer-codec.ts), the rest by proto-loader with their string fields then
 * checked for UTF-8 (strict-strings.ts), as the hand codecs read them. A request that does
 * not decode throws.
 */
export const decodedService = (name: ServedName): ServiceDefinition => withCodecs(strictStrings(service(name)), CODECS[name])

/** The service as the server adds it: decodedService, with a request that does not decode reaching its handler (tolerantService), to be answered INVALID_ARGUMENT. */
export const servedService = (name: ServedName): ServiceDefinition => tolerantService(decodedService(name))
