// The hand-written ModelInfer codecs against protobufjs on our V2 grpc_service.proto: any
// request protobufjs encodes (typed or raw contents, every parameter kind, unknown fields,
// two messages merged) decodes to what protobufjs reads; any response we encode decodes
// to what the proto-loader path sent; malformed bytes only ever raise ProtoError.
import { join } from 'node:path'
import fc from 'fast-check'
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { decodeModelInferRequest, encodeModelInferResponse, encodeModelStreamInferResponse, type InferReply } from '../../../src/api/grpc/infer-codec.ts'
import { PROTO_DIR } from '../../../src/proto/index.ts'
import { DATATYPES, ProtoError, toContents, toRaw } from '../../../src/tensor/index.ts'
import { anyDatatypeTensor, expectOnlyProtoErrors } from './codec-arbitraries.ts'

const root = new protobuf.Root().loadSync(join(PROTO_DIR, 'inference/grpc_service.proto'), { keepCase: true })
const Request = root.lookupType('inference.ModelInferRequest')
const Response = root.lookupType('inference.ModelInferResponse')
const StreamResponse = root.lookupType('inference.ModelStreamInferResponse')
const TO_OBJECT = { longs: String, defaults: true, arrays: true, oneofs: true } as const

const int64 = fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n).map(String)
const uint64 = fc.bigInt(0n, 2n ** 64n - 1n).map(String)
const short = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(a, { maxLength: 5 })

const parameter = fc.oneof(
  fc.record({ bool_param: fc.boolean() }),
  fc.record({ int64_param: int64 }),
  fc.record({ string_param: fc.string() }),
  fc.record({ double_param: fc.double() }),
  fc.record({ uint64_param: uint64 }),
)
const parameters = fc.dictionary(fc.string({ maxLength: 6 }), parameter, { maxKeys: 3 })
const contents = fc.record(
  {
    bool_contents: short(fc.boolean()),
    int_contents: short(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
    int64_contents: short(int64),
    uint_contents: short(fc.integer({ min: 0, max: 2 ** 32 - 1 })),
    uint64_contents: short(uint64),
    fp32_contents: short(fc.float()),
    fp64_contents: short(fc.double()),
    bytes_contents: short(fc.uint8Array({ maxLength: 8 })),
  },
  { requiredKeys: [] },
)
const request = fc.record(
  {
    model_name: fc.string(),
    model_version: fc.string(),
    id: fc.string(),
    parameters,
    inputs: short(
      fc.record(
        { name: fc.string({ maxLength: 6 }), datatype: fc.constantFrom('FP32', 'INT64', 'BYTES', ''), shape: short(fc.bigInt(0n, 99n).map(String)), parameters, contents },
        { requiredKeys: [] },
      ),
    ),
    outputs: short(fc.record({ name: fc.string({ maxLength: 6 }), parameters }, { requiredKeys: [] })),
    raw_input_contents: short(fc.uint8Array({ maxLength: 12 })),
  },
  { requiredKeys: [] },
)

/** Unknown fields (numbers the .proto does not use) in every wire type. */
const unknownFields = fc.tuple(fc.string(), fc.bigInt(0n, 2n ** 64n - 1n), fc.integer({ min: 0, max: 2 ** 32 - 1 })).map(([text, varint, fixed]) => {
  const w = protobuf.Writer.create()
  w.uint32((40 << 3) | 2).string(text)
  w.uint32((41 << 3) | 0).uint64(varint.toString() as unknown as number)
  w.uint32((42 << 3) | 5).fixed32(fixed)
  w.uint32((43 << 3) | 1).fixed64(7)
  return w.finish()
})

const bytesOf = (v: ArrayLike<number>): number[] => Array.from(v)

/** Our decoded request in protobufjs's toObject form. */
function normalized(msg: ReturnType<typeof decodeModelInferRequest>): unknown {
  const fields = ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'] as const
  return {
    ...msg,
    inputs: msg.inputs.map((input) => ({
      ...input,
      shape: input.shape.map(String),
      contents: input.contents && Object.fromEntries(fields.map((f) => [f, Array.from(input.contents?.[f] ?? [], (v) => (typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? bytesOf(v) : v))])),
    })),
    outputs: msg.outputs.map((o) => ({ name: o.name, parameters: {} })),
    raw_input_contents: msg.raw_input_contents.map(bytesOf),
  }
}

function reference(bytes: Uint8Array): unknown {
  const obj = Request.toObject(Request.decode(bytes), TO_OBJECT) as { inputs: { contents: Record<string, unknown[]> | null }[]; outputs: object[]; raw_input_contents: Uint8Array[] }
  for (const input of obj.inputs) if (input.contents) input.contents.bytes_contents = (input.contents.bytes_contents as Uint8Array[]).map(bytesOf)
  // The handler reads only an output's name: the decoder does not keep its parameters.
  return { ...obj, outputs: obj.outputs.map((o) => ({ ...o, parameters: {} })), raw_input_contents: obj.raw_input_contents.map(bytesOf) }
}

describe('ModelInferRequest decoder', () => {
  it('reads what protobufjs reads, with unknown fields and merged messages', () => {
    fc.assert(
      fc.property(request, unknownFields, request, (obj, unknown, more) => {
        const once = Buffer.concat([Request.encode(Request.fromObject(obj)).finish(), unknown])
        expect(normalized(decodeModelInferRequest(once))).toEqual(reference(once))
        const twice = Buffer.concat([once, Request.encode(Request.fromObject(more)).finish()])
        expect(normalized(decodeModelInferRequest(twice))).toEqual(reference(twice))
      }),
      { numRuns: 300 },
    )
  })

  it('refuses a model name, version, id, parameter, input or output name or datatype that is not valid UTF-8, naming it', () => {
    // A byte 0xff (never in UTF-8) in place of the marker's first letter.
    const poisoned = (obj: object): Uint8Array => {
      const bytes = Buffer.from(Request.encode(Request.fromObject(obj)).finish())
      bytes[bytes.indexOf('QQQ')] = 0xff
      return bytes
    }
    const refusal = (obj: object): string => {
      try {
        decodeModelInferRequest(poisoned(obj))
      } catch (err) {
        expect(err).toBeInstanceOf(ProtoError)
        return (err as Error).message
      }
      throw new Error('decoded')
    }
    const input = { name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }
    expect(refusal({ model_name: 'QQQ', inputs: [input] })).toMatch(/^model_name is not valid UTF-8 \(at byte \d+\): proto3 strings are UTF-8$/)
    expect(refusal({ model_name: 'm', model_version: 'QQQ' })).toMatch(/^model_version is not/)
    expect(refusal({ model_name: 'm', id: 'QQQ' })).toMatch(/^id is not/)
    expect(refusal({ model_name: 'm', parameters: { QQQ: { bool_param: true } } })).toMatch(/^a parameters key is not/)
    expect(refusal({ model_name: 'm', parameters: { k: { string_param: 'QQQ' } } })).toMatch(/^string_param is not/)
    expect(refusal({ model_name: 'm', inputs: [{ ...input, name: 'QQQ' }] })).toMatch(/^an input's name is not/)
    expect(refusal({ model_name: 'm', inputs: [{ ...input, datatype: 'QQQ' }] })).toMatch(/^an input's datatype is not/)
    expect(refusal({ model_name: 'm', inputs: [{ ...input, parameters: { QQQ: { bool_param: true } } }] })).toMatch(/^a parameters key is not/)
    expect(refusal({ model_name: 'm', outputs: [{ name: 'QQQ' }] })).toMatch(/^an output's name is not/)
    // A U+FFFD the client sent (valid UTF-8: ef bf bd) is text like any other.
    expect(decodeModelInferRequest(Request.encode(Request.fromObject({ model_name: 'm', id: 'a\ufffdb' })).finish()).id).toBe('a\ufffdb')
  })

  it('refuses malformed bytes with ProtoError and nothing else', () => {
    expectOnlyProtoErrors(decodeModelInferRequest, request, (obj) => Request.encode(Request.fromObject(obj)).finish())
  })

  it('merges an input whose contents come in many occurrences in one pass, in order', () => {
    // 100,000 occurrences of `contents`, one fp32 each (~0.7 MB, under the 4 MiB receive
    // limit): a decoder that copies what it has on every occurrence needs minutes for this
    // and holds the event loop all along; merged in place it takes milliseconds.
    const n = 100_000
    const w = protobuf.Writer.create()
    w.uint32((1 << 3) | 2).string('m')
    w.uint32((5 << 3) | 2).fork()
    w.uint32((1 << 3) | 2).string('x')
    for (let i = 0; i < n; i++) w.uint32((5 << 3) | 2).fork().uint32((6 << 3) | 5).float(i).ldelim()
    w.ldelim()
    const values = decodeModelInferRequest(w.finish()).inputs[0]?.contents?.fp32_contents
    expect(values?.length).toBe(n)
    expect(Array.from(values ?? []).every((v, i) => v === i)).toBe(true)
  })
})

const reply: fc.Arbitrary<InferReply> = fc.record({
  model_name: fc.string(),
  model_version: fc.string(),
  id: fc.string(),
  parameters: fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string(), fc.boolean(), fc.double())),
  outputs: fc.array(fc.tuple(fc.string({ maxLength: 6 }), anyDatatypeTensor()), { maxLength: 3 }),
  raw: fc.boolean(),
}).map((r) => (r.outputs.some(([, t]) => DATATYPES[t.datatype].oip === null) ? { ...r, raw: true } : r))

/** What the ModelInfer handler sent through proto-loader before the hand-written encoder. */
function viaProtoLoader(r: InferReply): Uint8Array {
  const parameters = Object.fromEntries(Object.entries(r.parameters).map(([k, v]) => [k, typeof v === 'string' ? { string_param: v } : typeof v === 'boolean' ? { bool_param: v } : { double_param: v }]))
  const outputs = r.outputs.map(([name, t]) => ({ name, datatype: t.datatype, shape: t.shape, contents: r.raw ? null : toContents(t) }))
  const obj = { model_name: r.model_name, model_version: r.model_version, id: r.id, parameters, outputs, raw_output_contents: r.raw ? r.outputs.map(([, t]) => toRaw(t)) : [] }
  return Response.encode(Response.fromObject(obj)).finish()
}

describe('ModelInferResponse encoder', () => {
  it('writes what protobufjs decodes to the same message proto-loader sent, typed or raw, every datatype', () => {
    const decoded = (bytes: Uint8Array): unknown => Response.toObject(Response.decode(bytes), TO_OBJECT)
    fc.assert(
      fc.property(reply, (r) => {
        expect(decoded(encodeModelInferResponse(r))).toEqual(decoded(viaProtoLoader(r)))
      }),
      { numRuns: 500 },
    )
  })

  it('writes ModelStreamInfer replies protobufjs decodes: the response, or the error with the request id and model', () => {
    const decoded = (bytes: Uint8Array): unknown => StreamResponse.toObject(StreamResponse.decode(bytes), TO_OBJECT)
    fc.assert(
      fc.property(reply, (r) => {
        const response = Response.toObject(Response.decode(viaProtoLoader(r)), TO_OBJECT)
        expect(decoded(encodeModelStreamInferResponse({ response: r }))).toEqual({ error_message: '', infer_response: response })
      }),
      { numRuns: 100 },
    )
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (errorMessage, modelName, id) => {
        const expected = StreamResponse.toObject(StreamResponse.decode(StreamResponse.encode(StreamResponse.fromObject({ error_message: errorMessage, infer_response: modelName || id ? { model_name: modelName, id } : null })).finish()), TO_OBJECT)
        expect(decoded(encodeModelStreamInferResponse({ errorMessage, modelName, id }))).toEqual(expected)
      }),
    )
  })
})
