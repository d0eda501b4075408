// onnxruntime's own log: a run that fails is a request's MODEL_FAILED (its message in the
// annotation), not a raw ANSI-coloured line onnxruntime writes to stderr itself, which any
// client could repeat at will. Checked in a process of its own, whose stderr is all there is:
// a failing run inline (the main thread) and one in a worker thread, each its own session.
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { root } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { writeFailingModel } from './hand-made-models.ts'

describe("onnxruntime's log", () => {
  it('writes nothing to stderr when runs fail, inline or in a worker: the failure is in the annotation', async () => {
    const dir = tempDir('specserve-ort-log-')
    const model = join(dir, 'failing.onnx')
    writeFailingModel(model)
    const yaml = `executors: { onnx_workers: 1 }
models:
  inline: { kind: onnx, path: ${JSON.stringify(model)}, placement: inline }
  worker: { kind: onnx, path: ${JSON.stringify(model)}, placement: worker }
ensembles:
  inline: { strategy: deadline-fallback, models: [inline], budget_ms: { default: 5000, max: 5000 } }
  worker: { strategy: deadline-fallback, models: [worker], budget_ms: { default: 5000, max: 5000 } }
`
    // -1 in column 3: the model's Range gets a step of 0, which onnxruntime refuses.
    const script = `
      import { Gateway } from ${JSON.stringify(join(root, 'src', 'gateway.ts'))}
      import { parseConfig } from ${JSON.stringify(join(root, 'src', 'config', 'load.ts'))}
      const gateway = new Gateway(parseConfig(${JSON.stringify(yaml)}, ${JSON.stringify(join(dir, 'c.yaml'))}))
      await gateway.load()
      const input = { datatype: 'FP32', shape: [1, 4], data: new Float32Array([0, 0, 0, -1]) }
      const models = []
      for (const ensemble of ['inline', 'worker']) models.push((await gateway.predict({ id: ensemble, ensemble, inputs: { input } })).models[0])
      await gateway.close()
      console.log(JSON.stringify(models.map((m) => [m.status, m.error?.code, m.error?.message])))`
    const file = join(dir, 'fail-twice.mjs')
    writeFileSync(file, script)
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [file], { cwd: root, encoding: 'utf8' })
    const failed = [expect.any(String), 'MODEL_FAILED', expect.stringMatching(/Range .*delta in Range operator can not be zero/)]
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual([failed, failed])
    expect(stderr.split('\n').filter((line) => /onnxruntime/.test(line))).toEqual([])
  })
})
