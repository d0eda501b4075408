// The hand-written Predict codecs against protobufjs (the library under proto-loader, so
// what every other method and our clients use) on the real gateway.proto: any request
// protobufjs encodes, packed or not, with unknown fields anywhere, decodes to what
// protobufjs reads; any response we encode decodes (by protobufjs) to what the
// proto-loader path sent; and bytes that are not a PredictRequest fail with ProtoError
// (INVALID_ARGUMENT at the call), never another exception.
import { join } from 'node:path'
import fc from 'fast-check'
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { decodePredictRequest, encodePredictResponse } from '../../../src/api/grpc/predict-codec.ts'
import { PROTO_DIR } from '../../../src/proto/index.ts'
import { ProtoError, toNativeTensor } from '../../../src/tensor/index.ts'
import { anyDatatypeTensor, expectOnlyProtoErrors } from './codec-arbitraries.ts'
import type { ModelAnnotation, PredictResult } from '../../../src/types.ts'

const real = new protobuf.Root().loadSync(join(PROTO_DIR, 'specserve/v1/gateway.proto'), { keepCase: true })
const PredictRequest = real.lookupType('specserve.v1.PredictRequest')
const PredictResponse = real.lookupType('specserve.v1.PredictResponse')
const TO_OBJECT = { longs: String, defaults: true, arrays: true, oneofs: false } as const

/** The same messages, written here with unknown fields (numbers the real .proto does not use) and a packing choice. */
function variant(packed: boolean): { request: protobuf.Type } {
  const p = `[packed = ${packed}]`
  const root = protobuf.parse(
    `syntax = "proto3"; package x;
    message Tensor {
      string datatype = 1; repeated int64 shape = 2 ${p};
      repeated float fp32_data = 3 ${p}; repeated double fp64_data = 4 ${p}; repeated int32 int_data = 5 ${p};
      repeated int64 int64_data = 6 ${p}; repeated bool bool_data = 7 ${p}; repeated string string_data = 8;
      repeated uint32 uint_data = 9 ${p}; repeated uint64 uint64_data = 10 ${p};
      string unknown_text = 40; fixed32 unknown_f32 = 41; fixed64 unknown_f64 = 42; repeated uint64 unknown_varints = 43 ${p};
    }
    message PredictRequest {
      string ensemble = 1; map<string, Tensor> inputs = 2; optional double budget_ms = 3; string id = 4;
      Tensor unknown_message = 30; sfixed64 unknown_fixed = 31; repeated sint32 unknown_sints = 32 ${p};
    }`,
    { keepCase: true },
  ).root
  return { request: root.lookupType('x.PredictRequest') }
}
const VARIANTS = [variant(true), variant(false)]

const int64 = fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n).map(String)
const uint64 = fc.bigInt(0n, 2n ** 64n - 1n).map(String)
const short = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(a, { maxLength: 6 })

const wireTensor = fc.record(
  {
    datatype: fc.constantFrom('', 'FP32', 'FP64', 'INT64', 'BYTES', 'BOOL', 'NOPE'),
    shape: short(fc.oneof(fc.bigInt(0n, 64n).map(String), int64)),
    fp32_data: short(fc.float()),
    fp64_data: short(fc.double()),
    int_data: short(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
    int64_data: short(int64),
    bool_data: short(fc.boolean()),
    string_data: short(fc.string()),
    uint_data: short(fc.integer({ min: 0, max: 2 ** 32 - 1 })),
    uint64_data: short(uint64),
    unknown_text: fc.string(),
    unknown_f32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    unknown_f64: uint64,
    unknown_varints: short(uint64),
  },
  { requiredKeys: [] },
)

const wireRequest = fc.record(
  {
    ensemble: fc.string(),
    inputs: fc.dictionary(fc.string({ maxLength: 8 }), wireTensor, { maxKeys: 3 }),
    budget_ms: fc.double(),
    id: fc.string(),
    unknown_message: wireTensor,
    unknown_fixed: int64,
    unknown_sints: short(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
  },
  { requiredKeys: [] },
)

/** Our decoded request in protobufjs's toObject form: typed arrays as arrays, 64-bit integers as decimal strings, absent fields at defaults. */
function normalized(msg: ReturnType<typeof decodePredictRequest>): unknown {
  const fields = ['fp32_data', 'fp64_data', 'int_data', 'int64_data', 'bool_data', 'string_data', 'uint_data', 'uint64_data'] as const
  const inputs: Record<string, unknown> = {}
  for (const [name, t] of Object.entries(msg.inputs)) {
    const out: Record<string, unknown> = { datatype: t.datatype, shape: t.shape.map(String) }
    for (const f of fields) out[f] = Array.from(t[f] ?? [], (v) => (typeof v === 'bigint' ? String(v) : v))
    inputs[name] = out
  }
  return { ensemble: msg.ensemble, inputs, id: msg.id, ...(msg.budget_ms === undefined ? {} : { budget_ms: msg.budget_ms }) }
}

function reference(bytes: Uint8Array): unknown {
  const obj = PredictRequest.toObject(PredictRequest.decode(bytes), TO_OBJECT) as Record<string, unknown>
  delete obj._budget_ms
  if (obj.budget_ms === undefined || obj.budget_ms === null) delete obj.budget_ms
  return obj
}

describe('PredictRequest decoder', () => {
  it('reads what protobufjs reads: packed and unpacked runs, repeated fields split, unknown fields anywhere', () => {
    fc.assert(
      fc.property(wireRequest, fc.boolean(), wireRequest, (obj, packed, more) => {
        const type = VARIANTS[packed ? 0 : 1]!.request
        const once = type.encode(type.fromObject(obj)).finish()
        expect(normalized(decodePredictRequest(once))).toEqual(reference(once))
        // Two messages back to back are one merged message: repeated fields concatenate, scalars and map keys take the last.
        const twice = Buffer.concat([once, type.encode(type.fromObject(more)).finish()])
        expect(normalized(decodePredictRequest(twice))).toEqual(reference(twice))
      }),
      { numRuns: 300 },
    )
  })

  it('keeps a packed float run as a typed array over the bytes when aligned', () => {
    const bytes = PredictRequest.encode(PredictRequest.fromObject({ ensemble: 'e', inputs: { x: { fp32_data: [1.5, -2, 3.25] } } })).finish()
    const views: number[] = []
    for (let shift = 0; shift < 4; shift++) {
      const at = new Uint8Array(bytes.length + shift)
      at.set(bytes, shift)
      const data = decodePredictRequest(at.subarray(shift)).inputs.x!.fp32_data as Float32Array
      expect(data).toBeInstanceOf(Float32Array)
      expect(Array.from(data)).toEqual([1.5, -2, 3.25])
      if (data.buffer === at.buffer) views.push(shift)
    }
    // Of four placements of the same bytes, one puts the run on a 4-byte boundary: that one is not copied.
    expect(views).toHaveLength(1)
  })

  it('reads an input named __proto__ as an input of that name, not as the map object\'s prototype', () => {
    // PredictRequest { inputs: { "__proto__": {} } }: field 2, one entry with only its key.
    const key = Buffer.from('__proto__')
    const msg = decodePredictRequest(Uint8Array.of(0x12, key.length + 2, 0x0a, key.length, ...key))
    expect(Object.keys(msg.inputs)).toEqual(['__proto__'])
    expect(Object.getPrototypeOf(msg.inputs)).toBe(Object.prototype)
  })

  it('refuses string_data that is not valid UTF-8 (proto3 strings are UTF-8) instead of replacing its bytes', () => {
    // PredictRequest { inputs: { "x": { string_data: [<bytes>] } } }: field 2 entry, key "x", value field 8.
    const request = (...bytes: number[]) => Uint8Array.of(0x12, 7 + bytes.length, 0x0a, 0x01, 0x78, 0x12, 2 + bytes.length, 0x42, bytes.length, ...bytes)
    expect(() => decodePredictRequest(request(0x89, 0x50, 0xff))).toThrow(ProtoError)
    expect(decodePredictRequest(request(...Buffer.from('é✓'))).inputs.x!.string_data).toEqual(['é✓'])
  })

  it('refuses an ensemble, id, input name or datatype that is not valid UTF-8, naming it, instead of reading U+FFFD', () => {
    // A byte 0xff (never in UTF-8) in place of the marker's first letter.
    const poisoned = (obj: object): Uint8Array => {
      const bytes = Buffer.from(PredictRequest.encode(PredictRequest.fromObject(obj)).finish())
      bytes[bytes.indexOf('QQQ')] = 0xff
      return bytes
    }
    const x = { fp32_data: [1] }
    expect(() => decodePredictRequest(poisoned({ ensemble: 'QQQ', inputs: { x } }))).toThrow(/^ensemble is not valid UTF-8 \(at byte \d+\): proto3 strings are UTF-8$/)
    expect(() => decodePredictRequest(poisoned({ ensemble: 'e', id: 'QQQ', inputs: { x } }))).toThrow(/^id is not valid UTF-8/)
    expect(() => decodePredictRequest(poisoned({ ensemble: 'e', inputs: { QQQ: x } }))).toThrow(/^an inputs key \(input name\) is not valid UTF-8/)
    expect(() => decodePredictRequest(poisoned({ ensemble: 'e', inputs: { x: { datatype: 'QQQ', fp32_data: [1] } } }))).toThrow(/^an input's datatype is not valid UTF-8/)
    expect(() => decodePredictRequest(poisoned({ ensemble: 'e', inputs: { x: { string_data: ['QQQ'] } } }))).toThrow(/^string_data is not valid UTF-8/)
    for (const obj of [{ ensemble: 'QQQ' }, { id: 'QQQ' }, { inputs: { QQQ: x } }]) expect(() => decodePredictRequest(poisoned(obj))).toThrow(ProtoError)
    // A U+FFFD the client sent (valid UTF-8: ef bf bd) is text like any other.
    expect(decodePredictRequest(PredictRequest.encode(PredictRequest.fromObject({ ensemble: 'e', id: 'a\ufffdb', inputs: {} })).finish()).id).toBe('a\ufffdb')
  })

  it('refuses malformed bytes with ProtoError and nothing else: random bytes, every truncation, wrong wire types', () => {
    expectOnlyProtoErrors(decodePredictRequest, wireRequest, (obj) => VARIANTS[0]!.request.encode(VARIANTS[0]!.request.fromObject(obj)).finish())
    expect(() => decodePredictRequest(Uint8Array.of(0x08, 0x01))).toThrow(ProtoError) // ensemble (1) as a varint
    expect(() => decodePredictRequest(Uint8Array.of(0x12, 0x05, 0x0a))).toThrow(ProtoError) // entry longer than the message
    expect(() => decodePredictRequest(Uint8Array.of(0x12, 0x04, 0x12, 0x02, 0x1a, 0x01))).toThrow(ProtoError) // 1-byte fp32 run
    expect(() => decodePredictRequest(Uint8Array.of(0x07))).toThrow(ProtoError) // wire type 7
  })
})

const annotation: fc.Arbitrary<ModelAnnotation> = fc.record(
  {
    name: fc.string(),
    version: fc.string(),
    status: fc.constantFrom('ok', 'error', 'timeout', 'cancelled', 'skipped'),
    latency_ms: fc.double({ noNaN: true }),
    used: fc.boolean(),
    batch: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    error: fc.record({ code: fc.string(), message: fc.string() }),
  },
  { requiredKeys: ['name', 'version', 'status', 'latency_ms', 'used'] },
) as fc.Arbitrary<ModelAnnotation>

const result: fc.Arbitrary<PredictResult> = fc
  .record({
    id: fc.string(),
    ensemble: fc.string(),
    strategy: fc.string(),
    outputs: fc.dictionary(fc.string({ maxLength: 8 }), anyDatatypeTensor(), { maxKeys: 3 }),
    decision: fc.record({
      chosen: fc.option(fc.string()),
      reason: fc.string(),
      // Whole votes, or weighted / soft tallies (sent rounded in votes, exact in weighted_votes).
      votes: fc.option(fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.double({ min: 0, max: 1e12, noNaN: true })))),
    }),
    budget_ms: fc.double({ noNaN: true }),
    elapsed_ms: fc.double({ noNaN: true }),
    models: fc.array(annotation, { maxLength: 4 }),
  })
  .map((r) => r as unknown as PredictResult)

/** What the Predict handler sent through proto-loader before the hand-written encoder. */
function viaProtoLoader(r: PredictResult): Uint8Array {
  const outputs: Record<string, object> = {}
  if (r.outputs) for (const name in r.outputs) outputs[name] = toNativeTensor(r.outputs[name]!)
  const votes = r.decision.votes ?? {}
  const rounded = Object.fromEntries(Object.entries(votes).map(([label, v]) => [label, Math.min(Math.round(v), 2 ** 32 - 1)]))
  const obj = { ...r, outputs, decision: { chosen: r.decision.chosen ?? undefined, reason: r.decision.reason, votes: rounded, weighted_votes: votes } }
  return PredictResponse.encode(PredictResponse.fromObject(obj)).finish()
}

const decodedResponse = (bytes: Uint8Array): unknown => PredictResponse.toObject(PredictResponse.decode(bytes), { ...TO_OBJECT, oneofs: true })

describe('PredictResponse encoder', () => {
  it('writes what protobufjs decodes to the same message proto-loader sent, for every datatype', () => {
    fc.assert(
      fc.property(result, (r) => {
        expect(decodedResponse(encodePredictResponse(r))).toEqual(decodedResponse(viaProtoLoader(r)))
      }),
      { numRuns: 500 },
    )
  })

  it('sends a weighted tally past the uint32 range as 4294967295 in votes, exact in weighted_votes', () => {
    const r = { id: 'w', ensemble: 'e', strategy: 'majority-vote', outputs: {}, budget_ms: 50, elapsed_ms: 1, models: [] }
    const decision = { chosen: 'heavy', reason: 'majority', votes: { '1': 5e9, '0': 3 } }
    const decoded = decodedResponse(encodePredictResponse({ ...r, decision } as unknown as PredictResult)) as { decision: { votes: Record<string, number>; weighted_votes: Record<string, number> } }
    expect(decoded.decision.votes).toEqual({ '1': 4_294_967_295, '0': 3 })
    expect(decoded.decision.weighted_votes).toEqual({ '1': 5e9, '0': 3 })
  })
})
