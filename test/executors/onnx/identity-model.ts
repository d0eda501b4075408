// One-node ONNX models written by hand (onnx-proto.ts): y = Identity(x) for any element
// type, y = ConstantOfShape(x), for a datatype's or a shape's path through onnxruntime.
import { writeFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom } from '../../helpers.ts'
import { join } from 'node:path'
import { tempDir } from '../../temp-dirs.ts'
import { modelBytes, node, ONNX_ELEM, valueInfo } from './onnx-proto.ts'

export { ONNX_ELEM }

/** A one-node model y = op(x), written to a temporary directory; returns its path. */
function oneNodeModel(op: string, x: { elem: number; rank: number }, y: { elem: number; rank: number }): string {
  const dims = (rank: number): string[] => Array.from({ length: rank }, (_, i) => `d${i}`)
  const model = modelBytes({ nodes: [node(op, ['x'], ['y'])], inputs: [valueInfo('x', x.elem, dims(x.rank))], outputs: [valueInfo('y', y.elem, dims(y.rank))] })
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
