// One-node ONNX models written by hand (y = Identity(x) for any element type, y =
// ConstantOfShape(x)): the demo models are all FP32/INT64 classifiers, and a datatype's or a
// shape's path through onnxruntime needs a model that makes it. Only the protobuf fields
// onnxruntime reads are written.
import { writeFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
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
export const ONNX_ELEM = { FP32: 1, INT64: 7, FP16: 10 } as const

/** ValueInfoProto { name, type: TypeProto { tensor_type { elem_type, shape { dim { dim_param } per dimension } } } } */
function valueInfo(name: string, elemType: number, rank: number): Buffer {
  const dims = Array.from({ length: rank }, (_, i) => len(1, len(2, `d${i}`)))
  return Buffer.concat([len(1, name), len(2, len(1, int(1, elemType), len(2, ...dims)))])
}

/** A one-node model y = op(x), written to a temporary directory; returns its path. */
function oneNodeModel(op: string, x: { elem: number; rank: number }, y: { elem: number; rank: number }): string {
  const node = Buffer.concat([len(1, 'x'), len(2, 'y'), len(4, op)])
  const graph = Buffer.concat([len(1, node), len(2, 'g'), len(11, valueInfo('x', x.elem, x.rank)), len(12, valueInfo('y', y.elem, y.rank))])
  const opset = Buffer.concat([len(1, ''), int(2, 13)])
  const model = Buffer.concat([int(1, 8), len(7, graph), len(8, opset)])
  const path = join(tempDir('specserve-onnx-'), `${op}.onnx`)
  writeFileSync(path, model)
  return path
}

/** y = Identity(x), both of `elemType` and shape [N]. */
export const identityModel = (elemType: number): string => oneNodeModel('Identity', { elem: elemType, rank: 1 }, { elem: elemType, rank: 1 })

/** y = ConstantOfShape(x): x an INT64 [3] shape, y FP32 zeros of that shape (an empty one when a dimension is 0). */
export const constantOfShapeModel = (): string => oneNodeModel('ConstantOfShape', { elem: ONNX_ELEM.INT64, rank: 1 }, { elem: ONNX_ELEM.FP32, rank: 3 })

/**
 * A REST app serving the model file `model` as two one-model ensembles, `inline` and `worker`
 * (its two placements), loaded before the file's tests and closed after them: `app()` is it.
 */
export function servedInBothPlacements(model: string): () => FastifyInstance {
  let app: FastifyInstance | undefined
  beforeAll(async () => {
    app = buildServer(
      configFrom(`
models:
  m-inline: { kind: onnx, path: ${JSON.stringify(model)}, placement: inline }
  m-worker: { kind: onnx, path: ${JSON.stringify(model)}, placement: worker }
ensembles:
  inline: { strategy: deadline-fallback, models: [m-inline] }
  worker: { strategy: deadline-fallback, models: [m-worker] }
`),
    )
    await app.gateway.load()
  })
  afterAll(async () => app?.close())
  return () => app!
}
