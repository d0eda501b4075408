// A one-node ONNX model (y = Identity(x), x and y of shape [N]) for any element type, written
// by hand: the demo models are all FP32/INT64, and a datatype's path through onnxruntime
// needs a model of that type. Only the protobuf fields onnxruntime reads are written.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../../temp-dirs.ts'

const varint = (n: number): number[] => {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}
const int = (field: number, n: number): Buffer => Buffer.from([...varint(field << 3), ...varint(n)])
const len = (field: number, ...parts: (Buffer | string)[]): Buffer => {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(body.length)]), body])
}

/** ONNX TensorProto.DataType numbers. */
export const ONNX_ELEM = { FP16: 10 } as const

/** Writes the model to a temporary directory; returns its path. */
export function identityModel(elemType: number): string {
  // ValueInfoProto { name, type: TypeProto { tensor_type { elem_type, shape { dim { dim_param: "N" } } } } }
  const value = (name: string): Buffer => Buffer.concat([len(1, name), len(2, len(1, int(1, elemType), len(2, len(1, len(2, 'N')))))])
  const node = Buffer.concat([len(1, 'x'), len(2, 'y'), len(4, 'Identity')])
  const graph = Buffer.concat([len(1, node), len(2, 'g'), len(11, value('x')), len(12, value('y'))])
  const opset = Buffer.concat([len(1, ''), int(2, 13)])
  const model = Buffer.concat([int(1, 8), len(7, graph), len(8, opset)])
  const path = join(tempDir('specserve-identity-'), 'identity.onnx')
  writeFileSync(path, model)
  return path
}
