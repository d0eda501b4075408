// A demo model's bytes with other outputs, as a retrained model might come back (no Python,
// no model file to commit): an output renamed (the audit's repro: same length, so every
// reference to it in the graph changes with it), or one more output beside the model's own.
import { bytes, node, ONNX_ELEM, valueInfo } from '../executors/onnx/onnx-proto.ts'

/** `model` with every `from` in its bytes written `to` (of the same length): an output renamed, say. */
export function renamed(model: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('a rename in place keeps the length')
  return Buffer.from(model.toString('latin1').replaceAll(from, to), 'latin1')
}

/** `model` with one more output, `name`: FP32 [N, 2], a copy of its `probabilities`. */
export function withExtraOutput(model: Buffer, name: string): Buffer {
  const extra = Buffer.concat([bytes(1, node('Identity', ['probabilities'], [name])), bytes(12, valueInfo(name, ONNX_ELEM.FP32, ['N', 2]))])
  // ModelProto's graph is field 7: the node and the output are appended to it (repeated fields may come in any order).
  return Buffer.concat(topLevelFields(model).map((f) => (f.field === 7 ? bytes(7, f.body, extra) : f.raw)))
}

interface Field {
  readonly field: number
  /** The whole field, key included. */
  readonly raw: Buffer
  /** A length-delimited field's content. */
  readonly body: Buffer
}

/** The top-level fields of a protobuf message. */
function topLevelFields(message: Buffer): Field[] {
  const fields: Field[] = []
  let at = 0
  const varint = (): number => {
    let value = 0
    for (let scale = 1; ; scale *= 128) {
      const byte = message[at++]!
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
    }
  }
  while (at < message.length) {
    const start = at
    const key = varint()
    const wire = key % 8
    let body: Buffer = Buffer.alloc(0)
    if (wire === 0) varint()
    else if (wire === 1) at += 8
    else if (wire === 5) at += 4
    else if (wire === 2) {
      const length = varint()
      body = message.subarray(at, at + length)
      at += length
    } else throw new Error(`protobuf wire type ${wire} is not read here`)
    fields.push({ field: Math.floor(key / 8), raw: message.subarray(start, at), body })
  }
  return fields
}
