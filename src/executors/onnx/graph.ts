// Reading an ONNX file's protobuf directly, for what onnxruntime's session does not say: the
// few fields read are named below (onnx.proto), every other field is skipped unread, so a
// model's weights cost only the skip.
import protobuf from 'protobufjs'

const LENGTH_DELIMITED = 2

/** ModelProto.graph. */
export const MODEL_GRAPH = 7
/** GraphProto.input and GraphProto.output: ValueInfoProto. */
const GRAPH_INPUT = 11
const GRAPH_OUTPUT = 12
/** ValueInfoProto.name and ValueInfoProto.type (TypeProto). */
const VALUE_NAME = 1
const VALUE_TYPE = 2
/** TypeProto.tensor_type, and its TypeProto.Tensor.shape (TensorShapeProto). */
const TYPE_TENSOR = 1
const TENSOR_SHAPE = 2

/**
 * Calls `visit` with the number and the end of each length-delimited field of the message
 * read up to `end` (the reader at the field's bytes); skips the others.
 */
export function eachField(reader: protobuf.Reader, end: number, visit: (field: number, fieldEnd: number) => void): void {
  while (reader.pos < end) {
    const tag = reader.uint32()
    if ((tag & 7) !== LENGTH_DELIMITED) {
      reader.skipType(tag & 7)
      continue
    }
    const fieldEnd = reader.uint32() + reader.pos
    if (fieldEnd > end) throw new RangeError('field runs past its message')
    visit(tag >>> 3, fieldEnd)
    reader.pos = fieldEnd
  }
}

/** Calls `visit` with the end of each length-delimited field `wanted` of the message read up to `end`; skips every other field. */
export function eachFieldOf(reader: protobuf.Reader, end: number, wanted: number, visit: (fieldEnd: number) => void): void {
  eachField(reader, end, (field, fieldEnd) => {
    if (field === wanted) visit(fieldEnd)
  })
}

/**
 * The names of the graph's inputs and outputs declared as tensors of unknown rank: a tensor
 * type without a shape. onnxruntime reports their shape as [], as it does a scalar's (a shape
 * of no dimensions), which is a different declaration: any shape fits the first.
 */
export function unknownRankTensors(bytes: Uint8Array): Set<string> {
  const names = new Set<string>()
  const reader = protobuf.Reader.create(bytes)
  eachFieldOf(reader, reader.len, MODEL_GRAPH, (graphEnd) => {
    eachField(reader, graphEnd, (field, valueEnd) => {
      if (field !== GRAPH_INPUT && field !== GRAPH_OUTPUT) return
      let name: string | undefined
      let shapeless = false
      eachField(reader, valueEnd, (field, end) => {
        if (field === VALUE_NAME) name = protobuf.util.utf8.read(reader.buf, reader.pos, end)
        else if (field === VALUE_TYPE) shapeless = tensorWithoutShape(reader, end)
      })
      if (name !== undefined && shapeless) names.add(name)
    })
  })
  return names
}

/** Whether the TypeProto read up to `end` is a tensor type with no shape. */
function tensorWithoutShape(reader: protobuf.Reader, end: number): boolean {
  let tensor = false
  let shape = false
  eachFieldOf(reader, end, TYPE_TENSOR, (tensorEnd) => {
    tensor = true
    eachFieldOf(reader, tensorEnd, TENSOR_SHAPE, () => (shape = true))
  })
  return tensor && !shape
}
