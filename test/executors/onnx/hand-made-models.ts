// Tiny classifiers written as ONNX protobuf bytes by hand (no Python, no model file to
// commit), each with a cost or a failure that depends on its input, as a real model's can:
// input `input` [N, 4] FP32; outputs `label` [N] INT64 (argmax of columns 0-2) and
// `probabilities` [N, 3] FP32 (their softmax). Column 3 drives the rest, through
// onnxruntime's Range, whose work is its length and which refuses a step of 0.
import { writeFileSync } from 'node:fs'

const FLOAT = 1
const INT64 = 7

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
const int = (field: number, n: number): Buffer => Buffer.from([...varint(field << 3), ...varint(n)])
function bytes(field: number, ...parts: (string | Buffer)[]): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(body.length)]), body])
}
/** TensorProto: dims, data_type, name, raw_data. */
function initializer(name: string, type: number, values: number[]): Buffer {
  const raw = Buffer.alloc(values.length * (type === INT64 ? 8 : 4))
  values.forEach((v, i) => (type === INT64 ? raw.writeBigInt64LE(BigInt(v), 8 * i) : raw.writeFloatLE(v, 4 * i)))
  return Buffer.concat([...(values.length === 1 && type === FLOAT ? [] : [int(1, values.length)]), int(2, type), bytes(8, name), bytes(9, raw)])
}
/** AttributeProto of type INT (2). */
const attr = (name: string, value: number): Buffer => Buffer.concat([bytes(1, name), int(3, value), int(20, 2)])
/** NodeProto: inputs, outputs, op_type, attributes. */
const node = (op: string, inputs: string[], outputs: string[], attrs: Buffer[] = []): Buffer =>
  Buffer.concat([...inputs.map((i) => bytes(1, i)), ...outputs.map((o) => bytes(2, o)), bytes(4, op), ...attrs.map((a) => bytes(5, a))])
/** ValueInfoProto with a tensor type whose dims are a symbol ('N') or a number. */
const valueInfo = (name: string, type: number, dims: (string | number)[]): Buffer =>
  Buffer.concat([bytes(1, name), bytes(2, bytes(1, int(1, type), bytes(2, ...dims.map((d) => bytes(1, typeof d === 'number' ? int(1, d) : bytes(2, d)))))) ])

/** A model whose run fails when any row has -1 in column 3 (Range's step is its smallest value plus 1), stacked or not. */
export function writeFailingModel(path: string): void {
  writeClassifier(path, [
    node('Slice', ['input', 'poison_from', 'poison_to', 'axis'], ['poison']),
    node('ReduceMin', ['poison'], ['smallest'], [attr('keepdims', 0)]),
    node('Add', ['smallest', 'one'], ['delta']),
    node('Range', ['zero', 'one', 'delta'], ['steps']),
  ], [])
}

/**
 * A model whose run takes `steps` Range steps times (1 - the largest value of column 3): slow
 * on the zeros of a warm-up, free on a real input with 1 there. Its warm-up says nothing of
 * what it costs to serve.
 */
export function writeSlowOnZerosModel(path: string, steps: number): void {
  writeClassifier(path, [
    node('Slice', ['input', 'poison_from', 'poison_to', 'axis'], ['cost']),
    node('ReduceMax', ['cost'], ['largest'], [attr('keepdims', 0)]),
    node('Sub', ['one', 'largest'], ['share']),
    node('Mul', ['share', 'scale'], ['length']),
    node('Range', ['zero', 'length', 'one'], ['steps']),
  ], [initializer('scale', FLOAT, [steps])])
}

/** The classifier around `work`, nodes ending in a `steps` tensor whose sum, times 0, is added to the probabilities. */
function writeClassifier(path: string, work: Buffer[], extra: Buffer[]): void {
  const inits = [
    initializer('zero', FLOAT, [0]),
    initializer('one', FLOAT, [1]),
    initializer('axis', INT64, [1]),
    initializer('logits_from', INT64, [0]),
    initializer('logits_to', INT64, [3]),
    initializer('poison_from', INT64, [3]),
    initializer('poison_to', INT64, [4]),
    ...extra,
  ]
  const nodes = [
    ...work,
    node('ReduceSum', ['steps'], ['sum'], [attr('keepdims', 0)]),
    node('Mul', ['sum', 'zero'], ['nothing']),
    node('Slice', ['input', 'logits_from', 'logits_to', 'axis'], ['logits']),
    node('Softmax', ['logits'], ['soft'], [attr('axis', 1)]),
    node('Add', ['soft', 'nothing'], ['probabilities']),
    node('ArgMax', ['probabilities'], ['label'], [attr('axis', 1), attr('keepdims', 0)]),
  ]
  const graph = Buffer.concat([
    ...nodes.map((n) => bytes(1, n)),
    bytes(2, 'hand-made'),
    ...inits.map((t) => bytes(5, t)),
    bytes(11, valueInfo('input', FLOAT, ['N', 4])),
    bytes(12, valueInfo('label', INT64, ['N'])),
    bytes(12, valueInfo('probabilities', FLOAT, ['N', 3])),
  ])
  // ModelProto: ir_version 8, graph, opset_import { domain "", version 13 }.
  writeFileSync(path, Buffer.concat([int(1, 8), bytes(7, graph), bytes(8, bytes(1, ''), int(2, 13))]))
}
