// Every datatype through every wire form and back, exactly: the JSON forms (through
// JSON.stringify and JSON.parse), raw bytes at an unaligned offset, and the protobuf
// forms through real serialization with the loader options the servers and clients use.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import { upstreamFailure } from '../../src/executors/remote/errors.ts'
import { INFERENCE_SERVICE, GATEWAY_SERVICE, SELDON_SERVICE, service, TFSERVING_SERVICE } from '../../src/proto/index.ts'
import {
  DATATYPES,
  decodeElements,
  fromContents,
  fromNativeTensor,
  fromOipJson,
  fromRaw,
  fromSeldonData,
  fromTensorProto,
  jsonElements,
  readShape,
  tensorFromJson,
  toContents,
  toNativeTensor,
  toNested,
  toOipJson,
  toRaw,
  toSeldonData,
  toTensorProto,
  type DataType,
  type Tensor,
  type WireTensor,
} from '../../src/tensor/index.ts'
import { fromOrtTensor, toOrtTensor } from '../../src/tensor/ort.ts'
import { comparable, everyDatatype, tensorOf, type Case } from './arbitraries.ts'

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T
const unaligned = (bytes: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(1), bytes]).subarray(1)
const roundTrip = (method: { requestSerialize(v: object): Buffer; requestDeserialize(b: Buffer): unknown }, message: object): Record<string, unknown> =>
  method.requestDeserialize(method.requestSerialize(message)) as Record<string, unknown>

/** A wire tensor (an upstream's answer) fitted to the original's datatype, as the remote executors do. */
const fitted = (wire: WireTensor, datatype: DataType): Tensor => ({ datatype, shape: [...(wire.shape ?? [])], data: decodeElements(wire.data, datatype, upstreamFailure, 't') })

function check(datatypes: readonly DataType[], codec: (c: Case) => Tensor, options: { signedZero?: boolean; safe?: boolean } = {}): void {
  for (const datatype of datatypes) {
    fc.assert(
      fc.property(tensorOf(datatype, options.safe), (c) => {
        const back = codec(c)
        expect(back.datatype).toBe(datatype)
        expect(back.shape).toEqual(c.tensor.shape)
        expect(comparable(back, options.signedZero ?? true)).toEqual(comparable(c.tensor, options.signedZero ?? true))
      }),
      { numRuns: 60 },
    )
  }
}

const numeric = everyDatatype.filter((d) => d !== 'BYTES')
const withContents = everyDatatype.filter((d) => DATATYPES[d].oip !== null)

describe('every datatype round-trips exactly through', () => {
  it('native JSON, nested arrays (-0 arrives as 0: JSON has no -0)', () => {
    check(everyDatatype, ({ tensor, spec }) => tensorFromJson(viaJson(toNested(tensor)), spec, inputFailure), { signedZero: false })
  })

  it('native JSON, {shape, datatype, data}', () => {
    check(everyDatatype, ({ tensor, spec }) => tensorFromJson(viaJson({ shape: tensor.shape, datatype: tensor.datatype, data: jsonElements(tensor) }), spec, inputFailure), { signedZero: false })
  })

  it('OIP JSON tensors', () => {
    check(everyDatatype, ({ tensor, spec }) => fromOipJson(viaJson(toOipJson('t', tensor)), spec, inputFailure), { signedZero: false })
  })

  it('raw little-endian bytes (binary extension, raw contents), read from an unaligned offset', () => {
    check(everyDatatype, ({ tensor }) => ({ ...tensor, data: fromRaw(unaligned(toRaw(tensor)), tensor.datatype, tensor.shape, inputFailure, 't') }))
  })

  it('OIP typed contents, through a serialized ModelInferRequest', () => {
    const infer = service(INFERENCE_SERVICE).ModelInfer!
    check(withContents, ({ tensor }) => {
      const msg = roundTrip(infer, { model_name: 'm', inputs: [{ name: 't', datatype: tensor.datatype, shape: tensor.shape, contents: toContents(tensor) }] })
      const input = (msg.inputs as { shape: string[]; contents: never }[])[0]!
      const shape = readShape(input.shape, inputFailure, 't')
      return { datatype: tensor.datatype, shape, data: fromContents(input.contents, tensor.datatype, shape, inputFailure, 't') }
    })
  })

  it('TF TensorProto (tensor_content), through a serialized PredictRequest', () => {
    const predict = service(TFSERVING_SERVICE).Predict!
    check(everyDatatype, ({ tensor }) => {
      const msg = roundTrip(predict, { model_spec: { name: 'm' }, inputs: { t: toTensorProto(tensor) } })
      return fitted(fromTensorProto((msg.inputs as Record<string, never>).t!, upstreamFailure, 't', Infinity), tensor.datatype)
    })
  })

  it('TF TensorProto typed fields (as TF Serving answers small tensors), through a serialized PredictRequest', () => {
    const predict = service(TFSERVING_SERVICE).Predict!
    check(everyDatatype, ({ tensor }) => {
      const row = DATATYPES[tensor.datatype]
      const values = Array.isArray(tensor.data)
        ? tensor.data.map((s) => Buffer.from(s))
        : tensor.datatype === 'FP16'
          ? Array.from(new Uint16Array(tensor.data.buffer))
          : tensor.datatype === 'BOOL'
            ? Array.from(tensor.data, Boolean)
            : Array.from(tensor.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? String(v) : v))
      const proto = { dtype: row.tf, tensor_shape: { dim: tensor.shape.map((size) => ({ size })) }, [row.tfField]: values }
      const msg = roundTrip(predict, { model_spec: { name: 'm' }, inputs: { t: proto } })
      return fitted(fromTensorProto((msg.inputs as Record<string, never>).t!, upstreamFailure, 't', Infinity), tensor.datatype)
    })
  })

  it('specserve.v1.Tensor, through a serialized Predict request', () => {
    const predict = service(GATEWAY_SERVICE).Predict!
    check(everyDatatype, ({ tensor, spec }) => {
      const msg = roundTrip(predict, { ensemble: 'e', inputs: { t: toNativeTensor(tensor) } })
      return fromNativeTensor((msg.inputs as Record<string, never>).t!, spec, inputFailure)
    })
  })

  it('Seldon ndarray and tensor over REST JSON (doubles: 64-bit integers within 2^53)', () => {
    check(everyDatatype, ({ tensor }) => fitted(fromSeldonData(viaJson(toSeldonData(tensor, 'ndarray', false, [])) as never, false, upstreamFailure, 't', Infinity), tensor.datatype), { signedZero: false, safe: true })
    check(numeric, ({ tensor }) => fitted(fromSeldonData(viaJson(toSeldonData(tensor, 'tensor', false, [])) as never, false, upstreamFailure, 't', Infinity), tensor.datatype), { signedZero: false, safe: true })
  })

  it('Seldon ndarray (ListValue) and tensor over gRPC, through a serialized SeldonMessage', () => {
    const predict = service(SELDON_SERVICE).Predict!
    for (const format of ['ndarray', 'tensor'] as const) {
      check(format === 'tensor' ? numeric : everyDatatype, ({ tensor }) => {
        const msg = roundTrip(predict, { data: toSeldonData(tensor, format, true, []) })
        return fitted(fromSeldonData(msg.data as never, true, upstreamFailure, 't', Infinity), tensor.datatype)
      }, { safe: true })
    }
  })

  it('onnxruntime tensors (the worker side of the worker wire)', () => {
    check(everyDatatype, ({ tensor }) => fromOrtTensor('t', toOrtTensor(tensor)))
  })
})

describe('an upstream answer fills any declared type its values fit', () => {
  // An INT64 answer (64-bit integers arrive as decimal strings from the protobuf forms)
  // fitted to narrower and float declarations, and an FP64 answer to FP32.
  const int64 = { datatype: 'INT64', shape: [2], data: BigInt64Array.of(7n, -3n) } as const
  const fp64 = { datatype: 'FP64', shape: [2], data: Float64Array.of(0.5, -2) } as const
  const wires = (tensor: Tensor): [string, WireTensor][] => {
    const row = DATATYPES[tensor.datatype]
    const typed = { dtype: row.tf, tensor_shape: { dim: [{ size: 2 }] }, [row.tfField]: Array.from(tensor.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? String(v) : v)) }
    const tfMsg = roundTrip(service(TFSERVING_SERVICE).Predict!, { model_spec: { name: 'm' }, inputs: { a: typed, b: toTensorProto(tensor) } })
    const tf = tfMsg.inputs as Record<string, never>
    const oip = roundTrip(service(INFERENCE_SERVICE).ModelInfer!, { model_name: 'm', inputs: [{ name: 't', datatype: tensor.datatype, shape: [2], contents: toContents(tensor) }] })
    const input = (oip.inputs as { contents: never }[])[0]!
    return [
      ['TF typed field', fromTensorProto(tf.a!, upstreamFailure, 't', Infinity)],
      ['TF tensor_content', fromTensorProto(tf.b!, upstreamFailure, 't', Infinity)],
      ['OIP typed contents', { datatype: tensor.datatype, shape: [2], data: fromContents(input.contents, tensor.datatype, [2], upstreamFailure, 't') }],
      ['OIP JSON', viaJson(toOipJson('t', tensor))],
    ]
  }
  it.each([
    ['INT64', int64, 'INT32', [7, -3]],
    ['INT64', int64, 'INT8', [7, -3]],
    ['INT64', int64, 'FP32', [7, -3]],
    ['FP64', fp64, 'FP32', [0.5, -2]],
  ] as const)('%s → %s', (_from, tensor, declared, values) => {
    for (const [form, wire] of wires(tensor)) expect(Array.from(fitted(wire, declared).data as ArrayLike<unknown>), form).toEqual(values)
  })

  it('refuses an answer whose values do not fit the declared type', () => {
    const big = { datatype: 'INT64', shape: [1], data: BigInt64Array.of(300n) } as const
    for (const [form, wire] of wires({ ...big, shape: [2], data: BigInt64Array.of(300n, 1n) })) {
      expect(() => fitted(wire, 'INT8'), form).toThrow(/element 0 is 300, outside INT8/)
    }
  })
})
