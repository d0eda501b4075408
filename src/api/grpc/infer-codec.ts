// inference.GRPCInferenceService/ModelInfer's messages coded by hand
// (proto/inference/grpc_service.proto), like Predict's (./predict-codec.ts): the request
// into the ModelInferRequestMsg the frontend reads (fp32/fp64 contents as typed-array
// views, raw_input_contents as views of the received bytes), the response from the
// predict's result into one buffer. The other V2 methods keep proto-loader.
import {
  DATATYPES,
  lenFieldSize,
  planElements,
  ProtoError,
  ProtoReader,
  ProtoWriter,
  readElementField,
  readShapeField,
  setEntry,
  stringFieldSize,
  toRaw,
  uint64Size,
  WireType,
  writeLen,
  writeString,
  type ElementsRead,
  type OipContentsField,
  type Plan,
  type Tensor,
  type WireElementKind,
} from '../../tensor/index.ts'
import type { ParameterValue } from '../oip/model.ts'
import { encoded, type MethodCodec } from './call.ts'
import type { InferInputTensorMsg, InferParameterMsg, ModelInferRequestMsg } from './messages.ts'

/** InferTensorContents' fields by number (1-8), with how each element is read. */
const CONTENTS_FIELDS: readonly (readonly [OipContentsField, WireElementKind])[] = [
  ['bool_contents', 'bool'],
  ['int_contents', 'int32'],
  ['int64_contents', 'int64'],
  ['uint_contents', 'uint32'],
  ['uint64_contents', 'uint64'],
  ['fp32_contents', 'float'],
  ['fp64_contents', 'double'],
  ['bytes_contents', 'bytes'],
]
const CONTENTS_NUMBER = Object.fromEntries(CONTENTS_FIELDS.map(([name], i) => [name, i + 1])) as Readonly<Record<OipContentsField, number>>

/** Reads the message fields of [start, end), handing each tag to `field` (which must consume it). */
function readMessage(r: ProtoReader, field: (sub: ProtoReader, number: number, wireType: number) => void): void {
  const [start, end] = r.span()
  const sub = new ProtoReader(r.buf, start, end)
  while (!sub.done) {
    const tag = sub.tag()
    field(sub, tag >>> 3, tag & 7)
  }
}

function expectLen(wireType: number, what: string): void {
  if (wireType !== WireType.LEN) throw new ProtoError(`${what} has wire type ${wireType}, expected ${WireType.LEN}`)
}

const PARAMETER_CHOICES = ['bool_param', 'int64_param', 'string_param', 'double_param', 'uint64_param'] as const
const PARAMETER_WIRE = [WireType.VARINT, WireType.VARINT, WireType.LEN, WireType.I64, WireType.VARINT] as const

function readParameter(r: ProtoReader): InferParameterMsg {
  let p: InferParameterMsg = {}
  readMessage(r, (sub, field, wireType) => {
    const choice = PARAMETER_CHOICES[field - 1]
    if (!choice) return sub.skip(wireType, field)
    if (wireType !== PARAMETER_WIRE[field - 1]) throw new ProtoError(`InferParameter field ${field} has wire type ${wireType}`)
    // A oneof: the last member read is the one set.
    const value = field === 1 ? sub.bool() : field === 2 ? `${sub.int64()}` : field === 3 ? sub.string('string_param') : field === 4 ? sub.double() : `${sub.uint64()}`
    p = { parameter_choice: choice, [choice]: value }
  })
  return p
}

/** One map<string, InferParameter> entry into `into`. */
function readParameterEntry(r: ProtoReader, into: Record<string, InferParameterMsg>): void {
  let key = ''
  let value: InferParameterMsg = {}
  readMessage(r, (sub, field, wireType) => {
    if (field === 1 || field === 2) expectLen(wireType, `parameter entry field ${field}`)
    if (field === 1) key = sub.string('a parameters key')
    else if (field === 2) value = readParameter(sub)
    else sub.skip(wireType, field)
  })
  setEntry(into, key, value)
}

/**
 * One occurrence of an input's `contents`, merged into what earlier ones gave: a message
 * field given twice is merged (its repeated fields concatenate), in place, so a message of
 * many small occurrences costs what one of its size costs.
 */
function readContents(r: ProtoReader, elements: ElementsRead): void {
  readMessage(r, (sub, field, wireType) => {
    if (field < 1 || field > 8) return sub.skip(wireType, field)
    const [name, kind] = CONTENTS_FIELDS[field - 1]!
    readElementField(sub, elements, name, kind, wireType)
  })
}

function readInput(r: ProtoReader): InferInputTensorMsg {
  const input: InferInputTensorMsg = { name: '', datatype: '', shape: [], parameters: {}, contents: null }
  const shape: (number | string)[] = []
  readMessage(r, (sub, field, wireType) => {
    if (field === 3) return readShapeField(sub, wireType, shape)
    if (field >= 1 && field <= 5) expectLen(wireType, `InferInputTensor field ${field}`)
    if (field === 1) input.name = sub.string("an input's name")
    else if (field === 2) input.datatype = sub.string("an input's datatype")
    else if (field === 4) readParameterEntry(sub, input.parameters)
    else if (field === 5) readContents(sub, (input.contents ??= {}) as ElementsRead)
    else sub.skip(wireType, field)
  })
  return { ...input, shape: shape as string[] }
}

export function decodeModelInferRequest(bytes: Uint8Array): ModelInferRequestMsg {
  const r = new ProtoReader(bytes)
  const msg: ModelInferRequestMsg = { model_name: '', model_version: '', id: '', parameters: {}, inputs: [], outputs: [], raw_input_contents: [] }
  while (!r.done) {
    const tag = r.tag()
    const field = tag >>> 3
    const wireType = tag & 7
    if (field >= 1 && field <= 7) expectLen(wireType, `ModelInferRequest field ${field}`)
    if (field === 1) msg.model_name = r.string('model_name')
    else if (field === 2) msg.model_version = r.string('model_version')
    else if (field === 3) msg.id = r.string('id')
    else if (field === 4) readParameterEntry(r, msg.parameters)
    else if (field === 5) msg.inputs.push(readInput(r))
    else if (field === 6) {
      const output = { name: '' }
      readMessage(r, (sub, f, w) => (f === 1 ? (expectLen(w, 'output name'), (output.name = sub.string("an output's name"))) : sub.skip(w, f)))
      msg.outputs.push(output)
    } else if (field === 7) {
      const [start, end] = r.span()
      msg.raw_input_contents.push(Buffer.from(r.buf.buffer, r.buf.byteOffset + start, end - start))
    } else r.skip(wireType, field)
  }
  return msg
}

/** What the ModelInfer handler answers: the response's parts, written by encodeModelInferResponse. */
export interface InferReply {
  readonly model_name: string
  readonly model_version: string
  readonly id: string
  readonly parameters: Readonly<Record<string, ParameterValue>>
  readonly outputs: readonly (readonly [string, Tensor])[]
  /** Outputs as raw_output_contents rather than typed contents. */
  readonly raw: boolean
}

function parameterSize(v: ParameterValue): number {
  if (typeof v === 'string') return lenFieldSize(3, Buffer.byteLength(v))
  return typeof v === 'boolean' ? 2 : 9
}

function writeParameters(w: ProtoWriter, field: number, params: Readonly<Record<string, ParameterValue>>, sizes: readonly number[]): void {
  let i = 0
  for (const key in params) {
    const v = params[key]!
    const valueSize = sizes[i++]!
    writeLen(w, field, stringFieldSize(1, key) + lenFieldSize(2, valueSize))
    writeString(w, 1, key)
    writeLen(w, 2, valueSize)
    if (typeof v === 'string') w.stringField(3, v)
    else if (typeof v === 'boolean') {
      w.tag(1, WireType.VARINT)
      w.uint32(v ? 1 : 0)
    } else {
      w.tag(4, WireType.I64)
      w.double(v)
    }
  }
}

interface OutputPlan {
  readonly name: string
  readonly tensor: Tensor
  readonly shapeBody: number
  /** Typed contents: the element plan and the InferTensorContents message size. */
  readonly contents: Plan | null
  readonly contentsSize: number
  readonly size: number
}

function planOutput(name: string, tensor: Tensor, raw: boolean): OutputPlan {
  let shapeBody = 0
  for (const d of tensor.shape) shapeBody += uint64Size(BigInt(d))
  const field = DATATYPES[tensor.datatype].oip
  const contents = raw || field === null ? null : planElements(tensor, CONTENTS_NUMBER[field])
  const contentsSize = contents ? (Array.isArray(tensor.data) ? contents.bodySize : lenFieldSize(contents.field, contents.bodySize)) : 0
  const size = stringFieldSize(1, name) + stringFieldSize(2, tensor.datatype) + (shapeBody ? lenFieldSize(3, shapeBody) : 0) + (raw ? 0 : lenFieldSize(5, contentsSize))
  return { name, tensor, shapeBody, contents, contentsSize, size }
}

function writeOutput(w: ProtoWriter, o: OutputPlan, raw: boolean): void {
  writeLen(w, 5, o.size)
  writeString(w, 1, o.name)
  writeString(w, 2, o.tensor.datatype)
  if (o.shapeBody) {
    writeLen(w, 3, o.shapeBody)
    for (const d of o.tensor.shape) w.uint64(BigInt(d))
  }
  if (raw) return
  writeLen(w, 5, o.contentsSize)
  if (!o.contents) return
  if (!Array.isArray(o.tensor.data)) writeLen(w, o.contents.field, o.contents.bodySize)
  o.contents.write(w)
}

/** A ModelInferResponse: its size, then how to write it. */
function planInferResponse(reply: InferReply): { size: number; write(w: ProtoWriter): void } {
  const paramSizes = Object.values(reply.parameters).map(parameterSize)
  const keys = Object.keys(reply.parameters)
  const outputs = reply.outputs.map(([name, tensor]) => planOutput(name, tensor, reply.raw))
  const raws = reply.raw ? reply.outputs.map(([, t]) => toRaw(t)) : []
  let size = stringFieldSize(1, reply.model_name) + stringFieldSize(2, reply.model_version) + stringFieldSize(3, reply.id)
  keys.forEach((key, i) => (size += lenFieldSize(4, stringFieldSize(1, key) + lenFieldSize(2, paramSizes[i]!))))
  for (const o of outputs) size += lenFieldSize(5, o.size)
  for (const b of raws) size += lenFieldSize(6, b.length)
  return { size, write: (w) => writeInferResponse(w, reply, paramSizes, outputs, raws) }
}

function writeInferResponse(w: ProtoWriter, reply: InferReply, paramSizes: readonly number[], outputs: readonly OutputPlan[], raws: readonly Uint8Array[]): void {
  writeString(w, 1, reply.model_name)
  writeString(w, 2, reply.model_version)
  writeString(w, 3, reply.id)
  writeParameters(w, 4, reply.parameters, paramSizes)
  for (const o of outputs) writeOutput(w, o, reply.raw)
  for (const b of raws) {
    writeLen(w, 6, b.length)
    w.bytes(b)
  }
}

export function encodeModelInferResponse(reply: InferReply, framed = false): Buffer {
  const planned = planInferResponse(reply)
  const w = new ProtoWriter(planned.size, framed)
  planned.write(w)
  return w.finish()
}

/**
 * One ModelStreamInfer reply: the inference's response, or its error message with an
 * infer_response carrying only the request's model name and id, so the client can match it.
 */
export type StreamInferReply = { readonly response: InferReply } | { readonly errorMessage: string; readonly modelName: string; readonly id: string }

export function encodeModelStreamInferResponse(reply: StreamInferReply): Buffer {
  if ('errorMessage' in reply) {
    const inner = stringFieldSize(1, reply.modelName) + stringFieldSize(3, reply.id)
    const w = new ProtoWriter(stringFieldSize(1, reply.errorMessage) + (inner ? lenFieldSize(2, inner) : 0))
    writeString(w, 1, reply.errorMessage)
    if (inner) {
      writeLen(w, 2, inner)
      writeString(w, 1, reply.modelName)
      writeString(w, 3, reply.id)
    }
    return w.finish()
  }
  const planned = planInferResponse(reply.response)
  const w = new ProtoWriter(lenFieldSize(2, planned.size))
  writeLen(w, 2, planned.size)
  planned.write(w)
  return w.finish()
}

/** ModelInfer's and ModelStreamInfer's codecs, for withCodecs. */
export const inferCodecs = {
  ModelInfer: { decode: decodeModelInferRequest, encode: encodeModelInferResponse } satisfies MethodCodec<ModelInferRequestMsg, InferReply>,
  ModelStreamInfer: { decode: decodeModelInferRequest, encode: encoded } satisfies MethodCodec<ModelInferRequestMsg, Buffer>,
}
