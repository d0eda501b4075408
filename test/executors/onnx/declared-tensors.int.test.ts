// What an ONNX model's graph declares, as the gateway takes it at load, in both placements
// (the main thread's session and the workers'): tensor names no request or answer can carry
// are refused, naming the tensor; a tensor declared without a shape (unknown rank, which
// onnxruntime reports as a scalar's []) takes any shape, and a true scalar stays one.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../../src/config/yaml.ts'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { servedInBothPlacements } from './identity-model.ts'
import { attr, modelBytes, node, ONNX_ELEM, valueInfo } from './onnx-proto.ts'

/** y = Identity(x), FP32 of these dimensions (null: no shape), with these names; its path. */
function identity(input: string, output: string, dims: (string | number)[] | null = ['N', 2]): string {
  const path = join(tempDir('specserve-onnx-declared-'), 'identity.onnx')
  writeFileSync(path, modelBytes({ nodes: [node('Identity', [input], [output])], inputs: [valueInfo(input, ONNX_ELEM.FP32, dims)], outputs: [valueInfo(output, ONNX_ELEM.FP32, dims)] }))
  return path
}

/** The issues a gateway of these models (each in both placements) fails to load with, by model. */
async function loadIssues(models: Record<string, string>): Promise<{ path: string; message: string }[]> {
  const entries = Object.entries(models).flatMap(([name, path]) => ['inline', 'worker'].map((p) => `  ${name}-${p}: { kind: onnx, path: ${JSON.stringify(path)}, placement: ${p} }`))
  const members = Object.keys(models).flatMap((name) => [`${name}-inline`, `${name}-worker`])
  const gateway = new Gateway(configFrom(`executors: { onnx_workers: 1 }\nmodels:\n${entries.join('\n')}\nensembles:\n  e: { strategy: deadline-fallback, models: [${members.join(', ')}] }\n`))
  try {
    await gateway.load()
  } catch (err) {
    // In the order the loads ended: by model.
    if (err instanceof ConfigError) return err.issues.map(({ path, message }) => ({ path, message })).sort((a, b) => a.path.localeCompare(b.path))
    throw err
  } finally {
    await gateway.close()
  }
  return []
}

describe('tensor names an ONNX model declares', () => {
  it('refuses an input or an output named __proto__ at load, naming it, in both placements', async () => {
    const refused = (role: string): string =>
      `failed to load: ${role} "__proto__": a tensor of that name cannot be served (tensors are keyed by name in JSON objects, where "__proto__" is refused or sets the object's prototype): rename it`
    expect(await loadIssues({ in: identity('__proto__', 'y'), out: identity('x', '__proto__') })).toEqual([
      { path: 'models.in-inline', message: refused('input') },
      { path: 'models.in-worker', message: refused('input') },
      { path: 'models.out-inline', message: refused('output') },
      { path: 'models.out-worker', message: refused('output') },
    ])
  })
})

const PLACEMENTS = ['inline', 'worker'] as const

describe('an ONNX tensor of unknown rank (its graph declares no shape)', () => {
  const app = servedInBothPlacements(identity('x', 'y', null))
  const shown = (name: string) => [{ name, datatype: 'FP32', shape: [-1] }]

  it('is shown as [-1] in the native and the V2 metadata, in both placements', async () => {
    for (const placement of PLACEMENTS) {
      expect((await app().inject(`/v1/models/m-${placement}`)).json()).toMatchObject({ inputs: shown('x'), outputs: shown('y') })
      expect((await app().inject(`/v1/ensembles/${placement}`)).json()).toMatchObject({ inputs: shown('x'), outputs: shown('y') })
      expect((await app().inject(`/v2/models/${placement}`)).json()).toMatchObject({ inputs: shown('x'), outputs: shown('y') })
    }
  })

  it('takes a tensor of any shape, and answers it, in both placements', async () => {
    for (const placement of PLACEMENTS) {
      // A scalar is given as {shape: [], data} (a bare number is no tensor in the native JSON), and answered as its number.
      for (const [value, answer] of [[[[1, 2], [3, 4]]], [[1, 2, 3]], [[[[1]], [[2]]]], [{ shape: [], data: [5] }, 5]]) {
        const res = await app().inject({ method: 'POST', url: `/v1/ensembles/${placement}/predict`, payload: { inputs: { x: value } } })
        expect(res.statusCode, `${placement} ${JSON.stringify(value)}: ${res.body}`).toBe(200)
        expect(res.json().outputs.y).toEqual(answer ?? value)
      }
      const v2 = await app().inject({ method: 'POST', url: `/v2/models/${placement}/infer`, payload: { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 1, 2], data: [1, 2, 3, 4] }] } })
      expect(v2.statusCode, v2.body).toBe(200)
      expect(v2.json().outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [2, 1, 2], data: [1, 2, 3, 4] }])
    }
  })

  it('loads a model that needs a rank of at least 1 from it: the warm-up gives it a vector, not a scalar', async () => {
    // y = Flatten(x, axis 1), x declared without a shape: onnxruntime refuses a scalar for it.
    const path = join(tempDir('specserve-onnx-declared-'), 'flatten.onnx')
    writeFileSync(path, modelBytes({ nodes: [node('Flatten', ['x'], ['y'], [attr('axis', 1)])], inputs: [valueInfo('x', ONNX_ELEM.FP32, null)], outputs: [valueInfo('y', ONNX_ELEM.FP32, null)] }))
    expect(await loadIssues({ flat: path })).toEqual([])
  })

  it('is a rank of its own beside another member: an ensemble of it and a model of inputs [N, 2] is refused', async () => {
    const gateway = new Gateway(
      configFrom(`models:
  any: { kind: onnx, path: ${JSON.stringify(identity('x', 'y', null))}, placement: inline }
  two: { kind: onnx, path: ${JSON.stringify(identity('x', 'y'))}, placement: inline }
ensembles:
  e: { strategy: deadline-fallback, models: [any, two] }
`),
    )
    try {
      await expect(gateway.load()).rejects.toThrow('ensembles.e.models.1: inputs of "two" (x:FP32[-1,2]) differ from "any" (x:FP32(any shape))')
    } finally {
      await gateway.close()
    }
  })
})

describe('an ONNX scalar tensor (a shape of no dimensions)', () => {
  const app = servedInBothPlacements(identity('x', 'y', []))

  it('stays a scalar: shown [], a scalar taken, anything else refused, in both placements', async () => {
    for (const placement of PLACEMENTS) {
      expect((await app().inject(`/v1/models/m-${placement}`)).json()).toMatchObject({ inputs: [{ name: 'x', datatype: 'FP32', shape: [] }] })
      const scalar = await app().inject({ method: 'POST', url: `/v1/ensembles/${placement}/predict`, payload: { inputs: { x: { shape: [], data: [5] } } } })
      expect(scalar.json().outputs.y).toBe(5)
      const matrix = await app().inject({ method: 'POST', url: `/v1/ensembles/${placement}/predict`, payload: { inputs: { x: [[1, 2], [3, 4]] } } })
      expect(matrix.statusCode).toBe(400)
      expect(matrix.json().message).toBe('input "x": shape [2, 2] does not match declared []')
    }
  })
})
