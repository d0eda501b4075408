// specserve.v1.Gateway/Predict's messages coded by hand (proto/specserve/v1/gateway.proto):
// the request straight into the NativeTensorMsg objects the frontend reads (float inputs
// as typed-array views of the received bytes), the response straight from a PredictResult
// into one buffer. proto-loader's generic fromObject/toObject walked every element twice
// and allocated per element; the other methods keep it. Reflection is untouched: it serves
// the .proto's descriptors, which these codecs follow field for field
// (test/api/grpc/predict-codec.test.ts checks them against protobufjs).
import { doubleFieldSize, encodeNativeTensor, int32Size, lenFieldSize, ProtoError, ProtoReader, ProtoWriter, readNativeTensor, setEntry, stringFieldSize, stringSize, varintSize, WireType, writeDouble, writeLen, writeString, type NativeTensorMsg, type TensorEncoding } from '../../tensor/index.ts'
import type { ModelAnnotation, PredictResult } from '../../types.ts'
import { encoded, type MethodCodec } from './call.ts'
import type { PredictRequestMsg } from './messages.ts'

export function decodePredictRequest(bytes: Uint8Array): PredictRequestMsg {
  const r = new ProtoReader(bytes)
  const msg: PredictRequestMsg = { ensemble: '', inputs: {}, id: '' }
  while (!r.done) {
    const tag = r.tag()
    const field = tag >>> 3
    const wireType = tag & 7
    if (field === 1 && wireType === WireType.LEN) msg.ensemble = r.string('ensemble')
    else if (field === 2 && wireType === WireType.LEN) readInputEntry(r, msg.inputs)
    else if (field === 3 && wireType === WireType.I64) msg.budget_ms = r.double()
    else if (field === 4 && wireType === WireType.LEN) msg.id = r.string('id')
    else if (field >= 1 && field <= 4) throw new ProtoError(`PredictRequest field ${field} has wire type ${wireType}`)
    else r.skip(wireType, field)
  }
  return msg
}

/** One map<string, Tensor> entry: key 1, value 2, either may be absent (then its default); a later key wins. */
function readInputEntry(r: ProtoReader, inputs: Record<string, NativeTensorMsg>): void {
  const [start, end] = r.span()
  const entry = new ProtoReader(r.buf, start, end)
  let key = ''
  let value: NativeTensorMsg | null = null
  while (!entry.done) {
    const tag = entry.tag()
    const field = tag >>> 3
    const wireType = tag & 7
    if (field === 1 && wireType === WireType.LEN) key = entry.string('an inputs key (input name)')
    else if (field === 2 && wireType === WireType.LEN) {
      const [s, e] = entry.span()
      value = readNativeTensor(entry, s, e)
    } else if (field === 1 || field === 2) throw new ProtoError(`map entry field ${field} has wire type ${wireType}`)
    else entry.skip(wireType, field)
  }
  setEntry(inputs, key, value ?? { datatype: '', shape: [] })
}

interface Sized<T> {
  readonly size: number
  readonly value: T
}

function annotationSize(m: ModelAnnotation): number {
  let size = stringFieldSize(1, m.name) + stringFieldSize(2, m.version) + stringFieldSize(3, m.status) + doubleFieldSize(4, m.latency_ms)
  if (m.used) size += 2
  if (m.error) size += lenFieldSize(6, stringFieldSize(1, m.error.code) + stringFieldSize(2, m.error.message ?? ''))
  if (m.batch) size += 1 + varintSize(m.batch)
  return size
}

function writeAnnotation(w: ProtoWriter, m: ModelAnnotation): void {
  writeString(w, 1, m.name)
  writeString(w, 2, m.version)
  writeString(w, 3, m.status)
  writeDouble(w, 4, m.latency_ms)
  if (m.used) {
    w.tag(5, WireType.VARINT)
    w.uint32(1)
  }
  if (m.error) {
    writeLen(w, 6, stringFieldSize(1, m.error.code) + stringFieldSize(2, m.error.message ?? ''))
    writeString(w, 1, m.error.code)
    writeString(w, 2, m.error.message ?? '')
  }
  if (m.batch) {
    w.tag(7, WireType.VARINT)
    w.uint32(m.batch)
  }
}

// votes is uint32 on the wire: weighted or soft tallies go there rounded, and exact in weighted_votes (4).
// A tally past the uint32 range (weights are any positive number) is sent as its maximum:
// cut to 32 bits, 5e9 would read as 705032704 and could outvote a larger tally.
const MAX_UINT32 = 0xffff_ffff
const voteCount = (value: number): number => (value > 0 ? Math.min(Math.round(value), MAX_UINT32) : 0)
const voteEntrySize = (label: string, count: number): number => stringFieldSize(1, label) + (count ? 1 + varintSize(count) : 0)
const weightedEntrySize = (label: string, value: number): number => stringFieldSize(1, label) + doubleFieldSize(2, value)

function decisionSize(d: PredictResult['decision']): number {
  let size = (d.chosen == null ? 0 : lenFieldSize(1, stringSize(d.chosen))) + stringFieldSize(2, d.reason)
  if (d.votes) {
    for (const label in d.votes) {
      const value = d.votes[label]!
      size += lenFieldSize(3, voteEntrySize(label, voteCount(value))) + lenFieldSize(4, weightedEntrySize(label, value))
    }
  }
  return size
}

function writeDecision(w: ProtoWriter, d: PredictResult['decision'], size: number): void {
  writeLen(w, 5, size)
  if (d.chosen != null) w.stringField(1, d.chosen) // optional: present even when empty
  writeString(w, 2, d.reason)
  if (!d.votes) return
  for (const label in d.votes) {
    const count = voteCount(d.votes[label]!)
    writeLen(w, 3, voteEntrySize(label, count))
    writeString(w, 1, label)
    if (count) {
      w.tag(2, WireType.VARINT)
      w.uint32(count)
    }
  }
  for (const label in d.votes) {
    const value = d.votes[label]!
    writeLen(w, 4, weightedEntrySize(label, value))
    writeString(w, 1, label)
    writeDouble(w, 2, value)
  }
}

interface Planned {
  readonly size: number
  write(w: ProtoWriter): void
}

/** A successful predict's PredictResponse: its size, then how to write it. */
function planPredictResponse(result: PredictResult): Planned {
  const outputs: Sized<[string, TensorEncoding]>[] = []
  if (result.outputs) {
    for (const name in result.outputs) {
      const tensor = encodeNativeTensor(result.outputs[name]!)
      outputs.push({ size: stringFieldSize(1, name) + lenFieldSize(2, tensor.size), value: [name, tensor] })
    }
  }
  const models: Sized<ModelAnnotation>[] = result.models.map((m) => ({ size: annotationSize(m), value: m }))
  const decision = decisionSize(result.decision)
  let size = stringFieldSize(1, result.id) + stringFieldSize(2, result.ensemble) + stringFieldSize(3, result.strategy)
  for (const o of outputs) size += lenFieldSize(4, o.size)
  size += lenFieldSize(5, decision) + doubleFieldSize(6, result.budget_ms) + doubleFieldSize(7, result.elapsed_ms)
  for (const m of models) size += lenFieldSize(8, m.size)
  return {
    size,
    write(w) {
      writeString(w, 1, result.id)
      writeString(w, 2, result.ensemble)
      writeString(w, 3, result.strategy)
      for (const { size: entrySize, value: [name, tensor] } of outputs) {
        writeLen(w, 4, entrySize)
        writeString(w, 1, name)
        writeLen(w, 2, tensor.size)
        tensor.write(w)
      }
      writeDecision(w, result.decision, decision)
      writeDouble(w, 6, result.budget_ms)
      writeDouble(w, 7, result.elapsed_ms)
      for (const m of models) {
        writeLen(w, 8, m.size)
        writeAnnotation(w, m.value)
      }
    },
  }
}

/** A successful predict's PredictResponse, sized first, then written into one buffer (`framed`: after gRPC's message prefix). */
export function encodePredictResponse(result: PredictResult, framed = false): Buffer {
  const planned = planPredictResponse(result)
  const w = new ProtoWriter(planned.size, framed)
  planned.write(w)
  return w.finish()
}

/** Why one message of a stream failed (specserve.v1.StreamError). */
export interface StreamErrorInfo {
  readonly code: string
  readonly message: string
  readonly status: number
  readonly resultJson: string
}

/** One PredictStream reply: the message's result, or its error. */
export type StreamReply = { readonly id: string; readonly result: PredictResult; readonly error?: undefined } | { readonly id: string; readonly error: StreamErrorInfo }

export function encodeStreamReply(reply: StreamReply): Buffer {
  let body: Planned
  let field: number
  if (reply.error === undefined) {
    body = planPredictResponse(reply.result)
    field = 2
  } else {
    const e = reply.error
    const size = stringFieldSize(1, e.code) + stringFieldSize(2, e.message) + (e.status ? 1 + int32Size(e.status) : 0) + stringFieldSize(4, e.resultJson)
    body = {
      size,
      write(w) {
        writeString(w, 1, e.code)
        writeString(w, 2, e.message)
        if (e.status) {
          w.tag(3, WireType.VARINT)
          w.int32(e.status)
        }
        writeString(w, 4, e.resultJson)
      },
    }
    field = 3
  }
  const w = new ProtoWriter(stringFieldSize(1, reply.id) + lenFieldSize(field, body.size))
  writeString(w, 1, reply.id)
  writeLen(w, field, body.size)
  body.write(w)
  return w.finish()
}

/** Predict's and PredictStream's codecs, for withCodecs. */
export const predictCodecs = {
  Predict: { decode: decodePredictRequest, encode: encodePredictResponse } satisfies MethodCodec<PredictRequestMsg, PredictResult>,
  PredictStream: { decode: decodePredictRequest, encode: encoded } satisfies MethodCodec<PredictRequestMsg, Buffer>,
}
