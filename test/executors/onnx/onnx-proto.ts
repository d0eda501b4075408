// The few ONNX protobuf messages the hand-written test models need, as bytes: only the fields
// onnxruntime reads. The demo models are all scikit-learn classifiers; a datatype, a shape or
// a cost that depends on the input needs a model that makes it.

/** ONNX TensorProto.DataType numbers. */
export const ONNX_ELEM = { FP32: 1, INT64: 7, BOOL: 9, FP16: 10 } as const

function varint(value: number): number[] {
  const out: number[] = []
  let n = value
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}

/** A varint field. */
export const int = (field: number, n: number): Buffer => Buffer.from([...varint(field << 3), ...varint(n)])

/** A length-delimited field: a string, or nested messages' bytes. */
export function bytes(field: number, ...parts: (string | Buffer)[]): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(body.length)]), body])
}

/** TensorProto: dims, data_type, name, raw_data. A single FP32 value is a scalar; other values a vector. */
export function initializer(name: string, type: number, values: number[]): Buffer {
  const int64 = type === ONNX_ELEM.INT64
  const raw = Buffer.alloc(values.length * (int64 ? 8 : 4))
  values.forEach((v, i) => (int64 ? raw.writeBigInt64LE(BigInt(v), 8 * i) : raw.writeFloatLE(v, 4 * i)))
  return Buffer.concat([...(values.length === 1 && !int64 ? [] : [int(1, values.length)]), int(2, type), bytes(8, name), bytes(9, raw)])
}

/** AttributeProto of type INT (2). */
export const attr = (name: string, value: number): Buffer => Buffer.concat([bytes(1, name), int(3, value), int(20, 2)])

/** AttributeProto of type GRAPH (5): a subgraph (graphBytes), such as a Loop's body. */
export const graphAttr = (name: string, graph: Buffer): Buffer => Buffer.concat([bytes(1, name), bytes(6, graph), int(20, 5)])

/** NodeProto: inputs, outputs, op_type, attributes. */
export const node = (op: string, inputs: string[], outputs: string[], attrs: Buffer[] = []): Buffer =>
  Buffer.concat([...inputs.map((i) => bytes(1, i)), ...outputs.map((o) => bytes(2, o)), bytes(4, op), ...attrs.map((a) => bytes(5, a))])

/**
 * ValueInfoProto of a tensor whose dimensions are each a symbol ('N') or a size; `null`: no
 * shape at all, a tensor of unknown rank (where [] is a scalar: a shape of no dimensions).
 */
export const valueInfo = (name: string, type: number, dims: (string | number)[] | null): Buffer =>
  Buffer.concat([bytes(1, name), bytes(2, bytes(1, int(1, type), ...(dims === null ? [] : [bytes(2, ...dims.map((d) => bytes(1, typeof d === 'number' ? int(1, d) : bytes(2, d))))])))])

type GraphParts = { nodes: Buffer[]; initializers?: Buffer[]; inputs: Buffer[]; outputs: Buffer[] }

/** GraphProto fields: a model's graph, or a subgraph for graphAttr. */
export function graphBytes(parts: GraphParts, name = 'g'): Buffer {
  return Buffer.concat([
    ...parts.nodes.map((n) => bytes(1, n)),
    bytes(2, name),
    ...(parts.initializers ?? []).map((t) => bytes(5, t)),
    ...parts.inputs.map((v) => bytes(11, v)),
    ...parts.outputs.map((v) => bytes(12, v)),
  ])
}

/** ModelProto around a graph: ir_version 8, opset 13 of the default domain (or `opset`). */
export function modelBytes(parts: GraphParts & { opset?: number }): Buffer {
  return Buffer.concat([int(1, 8), bytes(7, graphBytes(parts)), bytes(8, bytes(1, ''), int(2, parts.opset ?? 13))])
}
