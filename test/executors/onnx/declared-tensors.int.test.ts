// What an ONNX model's graph declares, as the gateway takes it at load, in both placements
// (the main thread's session and the workers'): tensor names no request or answer can carry
// are refused, naming the tensor.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../../src/config/yaml.ts'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { modelBytes, node, ONNX_ELEM, valueInfo } from './onnx-proto.ts'

/** y = Identity(x), FP32 [N, 2], with these names; its path. */
function identity(input: string, output: string): string {
  const path = join(tempDir('specserve-onnx-names-'), 'identity.onnx')
  writeFileSync(path, modelBytes({ nodes: [node('Identity', [input], [output])], inputs: [valueInfo(input, ONNX_ELEM.FP32, ['N', 2])], outputs: [valueInfo(output, ONNX_ELEM.FP32, ['N', 2])] }))
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
      `failed to load: ${role} "__proto__": a tensor of that name cannot be served (tensors are keyed by name in JSON objects, where "__proto__" is refused or sets the object's prototype): rename it in the model`
    expect(await loadIssues({ in: identity('__proto__', 'y'), out: identity('x', '__proto__') })).toEqual([
      { path: 'models.in-inline', message: refused('input') },
      { path: 'models.in-worker', message: refused('input') },
      { path: 'models.out-inline', message: refused('output') },
      { path: 'models.out-worker', message: refused('output') },
    ])
  })
})
