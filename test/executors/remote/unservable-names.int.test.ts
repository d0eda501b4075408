// A remote model whose served tensor is named "__proto__" (declared in YAML, or read from its
// upstream's metadata) is refused at load, naming it, as an ONNX model is: no request or
// answer can carry that name (tensors are keyed by name in JSON objects).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../../src/config/yaml.ts'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom } from '../../helpers.ts'
import { startFaultServer, type FaultServer } from './fault-server.ts'

let http: FaultServer
beforeAll(async () => {
  http = await startFaultServer()
})
afterAll(async () => http?.close())

/** The messages a gateway of one remote model with these `inputs`/`outputs` declarations fails to load with. */
async function loadIssues(io: string): Promise<string[]> {
  const gateway = new Gateway(configFrom(`models:\n  m: { kind: oip, url: "${http.url}", model: ok, retries: 0, ${io} }\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n`))
  try {
    await gateway.load()
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => i.message)
    throw err
  } finally {
    await gateway.close()
  }
}

describe('a remote model serving a tensor named __proto__', () => {
  it('is refused at load, naming the input or the output', async () => {
    const input = await loadIssues('inputs: [{ name: __proto__, datatype: FP32, shape: [-1, 13] }], outputs: [{ name: label, datatype: INT64, shape: [-1] }]')
    expect(input).toEqual([expect.stringContaining('input "__proto__": a tensor of that name cannot be served')])
    const output = await loadIssues('inputs: [{ name: input, datatype: FP32, shape: [-1, 13] }], outputs: [{ name: __proto__, datatype: INT64, shape: [-1] }]')
    expect(output).toEqual([expect.stringContaining('output "__proto__": a tensor of that name cannot be served')])
  })
})
