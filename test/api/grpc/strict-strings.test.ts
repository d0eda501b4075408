// proto-loader's decoders with their string fields checked for UTF-8 (strict-strings.ts):
// a name that is not UTF-8 is a malformed message naming the field, in nested messages and
// map entries too, where proto-loader alone reads it with U+FFFD; anything else decodes as
// proto-loader decodes it.
import { fromJSON, type ServiceDefinition } from '@grpc/proto-loader'
import { describe, expect, it } from 'vitest'
import { strictStrings } from '../../../src/api/grpc/strict-strings.ts'
import { GATEWAY_SERVICE, INFERENCE_SERVICE, service, type Method } from '../../../src/proto/index.ts'
import { ProtoError } from '../../../src/tensor/index.ts'

const lenient = { ...service(GATEWAY_SERVICE), ...service(INFERENCE_SERVICE) } as unknown as Record<string, Method>
const strict = { ...strictStrings(service(GATEWAY_SERVICE)), ...strictStrings(service(INFERENCE_SERVICE)) } as unknown as Record<string, Method>

/** `request` of `method` encoded, with a byte 0xff (never in UTF-8) in place of the marker's first letter. */
function poisoned(method: string, request: object): Buffer {
  const bytes = Buffer.from(lenient[method]!.requestSerialize(request))
  bytes[bytes.indexOf('QQQ')] = 0xff
  return bytes
}

/** The ProtoError message strict decoding of `bytes` throws. */
function refusal(method: string, bytes: Buffer): string {
  try {
    strict[method]!.requestDeserialize(bytes)
  } catch (err) {
    expect(err).toBeInstanceOf(ProtoError)
    return (err as Error).message
  }
  throw new Error(`${method} decoded`)
}

describe('strictStrings', () => {
  it('refuses a name or version that is not UTF-8 on the methods proto-loader decodes, naming the field', () => {
    for (const method of ['ModelMetadata', 'ModelReady', 'GetEnsemble', 'GetModel']) {
      const bytes = poisoned(method, { name: 'QQQ' })
      // What proto-loader alone makes of it: the name altered, not refused.
      expect((lenient[method]!.requestDeserialize(bytes) as { name: string }).name).toBe('\ufffdQQ')
      expect(refusal(method, bytes)).toMatch(/^name is not valid UTF-8 \(at byte \d+\): proto3 strings are UTF-8$/)
    }
    expect(refusal('ModelMetadata', poisoned('ModelMetadata', { name: 'cancer', version: 'QQQ' }))).toMatch(/^version is not valid UTF-8/)
  })

  it('follows nested messages and map entries along the descriptor', () => {
    const input = { name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }
    expect(refusal('ModelInfer', poisoned('ModelInfer', { model_name: 'm', inputs: [{ ...input, name: 'QQQ' }] }))).toMatch(/^inputs\.name is not valid UTF-8/)
    expect(refusal('ModelInfer', poisoned('ModelInfer', { model_name: 'm', parameters: { QQQ: { bool_param: true } } }))).toMatch(/^parameters\.key is not valid UTF-8/)
    expect(refusal('ModelInfer', poisoned('ModelInfer', { model_name: 'm', inputs: [{ ...input, parameters: { k: { string_param: 'QQQ' } } }] }))).toMatch(
      /^inputs\.parameters\.value\.string_param is not valid UTF-8/,
    )
    expect(refusal('Predict', poisoned('Predict', { ensemble: 'e', inputs: { x: { string_data: ['QQQ'] } } }))).toMatch(/^inputs\.value\.string_data is not valid UTF-8/)
  })

  it('decodes everything else as proto-loader does: U+FFFD sent as UTF-8, bytes fields, unknown fields, other wire types', () => {
    const cases: [string, Buffer][] = [
      ['GetModel', Buffer.from(lenient.GetModel!.requestSerialize({ name: 'a\ufffdb' }))],
      ['ModelInfer', Buffer.from(lenient.ModelInfer!.requestSerialize({ model_name: 'm', raw_input_contents: [Buffer.from([0xff, 0xfe])] }))],
      ['ModelInfer', Buffer.from(lenient.ModelInfer!.requestSerialize({ model_name: 'm', inputs: [{ name: 'x', contents: { bytes_contents: [Buffer.from([0xff])] } }] }))],
      ['GetModel', Buffer.from([0x0a, 0x01, 0x61, 0x12, 0x02, 0xff, 0xff])], // name "a", then an unknown field 2 of bytes that are not UTF-8
      ['ListEnsembles', Buffer.from([0x0a, 0x01, 0xff])], // a field ListEnsemblesRequest does not have
    ]
    for (const [method, bytes] of cases) expect(strict[method]!.requestDeserialize(bytes)).toEqual(lenient[method]!.requestDeserialize(bytes))
    // Every method's request type is found in its descriptors (resolved on its first call).
    for (const method of Object.keys(strict)) expect(strict[method]!.requestDeserialize(Buffer.alloc(0)), method).toEqual(lenient[method]!.requestDeserialize(Buffer.alloc(0)))
  })

  it('refuses a field that runs past the end of the message, which proto-loader reads cut short', () => {
    const truncated = Buffer.from([0x0a, 0x05, 0x61]) // name: 5 bytes, 1 follows
    expect(lenient.GetModel!.requestDeserialize(truncated)).toEqual({ name: 'a' })
    expect(refusal('GetModel', truncated)).toBe('length 5 runs past the end of the message')
  })

  it('walks a message type that holds itself, as deep as protobufjs decodes it (100 levels)', () => {
    // None of our requests recurses; a type that does, from a protobufjs JSON descriptor.
    const json = { nested: { t: { nested: { Node: { fields: { name: { type: 'string', id: 1 }, child: { type: 'Node', id: 2 } } }, S: { methods: { Get: { requestType: 'Node', responseType: 'Node' } } } } } } }
    const Get = (strictStrings(fromJSON(json as Parameters<typeof fromJSON>[0], { keepCase: true })['t.S'] as ServiceDefinition) as unknown as Record<string, Method>).Get!
    const nested = (depth: number): object => (depth === 0 ? { name: 'QQQ' } : { child: nested(depth - 1) })
    const bytes = (depth: number): Buffer => {
      const b = Buffer.from(Get.requestSerialize(nested(depth)))
      b[b.indexOf('QQQ')] = 0xff
      return b
    }
    expect(() => Get.requestDeserialize(bytes(3))).toThrow(/^child\.child\.child\.name is not valid UTF-8/)
    expect(() => Get.requestDeserialize(bytes(100))).toThrow(/^(child\.){100}name is not valid UTF-8/)
    expect(() => Get.requestDeserialize(bytes(101))).toThrow('maximum nesting depth exceeded') // protobufjs's refusal, before the walk
  })
})
