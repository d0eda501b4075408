// openSession's choice between the native session and the public API when the binding does
// not behave as native.ts expects: native.ts is replaced by a session whose first run throws
// or leaves an output out; the public API under it is the real one.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { root } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'

const binding = vi.hoisted(() => ({ firstRun: (): unknown => undefined, released: 0 }))
vi.mock('../../../src/executors/onnx/native.ts', () => ({
  openSync: () => ({
    inputMetadata: [{ name: 'input', isTensor: true, type: 'float32', shape: [-1, 30] }],
    outputMetadata: [
      { name: 'label', isTensor: true, type: 'int64', shape: [-1] },
      { name: 'probabilities', isTensor: true, type: 'float32', shape: [-1, 2] },
    ],
    run: () => binding.firstRun(),
    release: () => void binding.released++,
  }),
}))
const { openSession } = await import('../../../src/executors/onnx/session.ts')

const model = join(root, 'models', 'cancer_logreg.onnx')
const zeros = { input: { datatype: 'FP32', shape: [1, 30], data: new Float32Array(30) } } as const

beforeEach(() => {
  binding.released = 0
})

describe('openSession on a binding that misbehaves', () => {
  it.each([
    ['throws on its first run', () => { throw new Error('Tensor must be an object.') }],
    ['leaves an output out of its first answer', () => ({ label: { dims: [1], data: new BigInt64Array(1) } })],
  ])('serves the model through the public API when the native session %s, released once', async (_what, firstRun) => {
    binding.firstRun = firstRun
    const opened = await openSession(model)
    try {
      expect(opened.session.sync).toBe(false)
      expect(binding.released).toBe(1)
      const out = await opened.session.run(zeros)
      expect(out.label!.dims).toEqual([1])
      expect(out.probabilities!.dims).toEqual([1, 2])
    } finally {
      await opened.session.release()
    }
  })

  it("fails to load with onnxruntime's own error when the public API cannot open the model either", async () => {
    binding.firstRun = () => {
      throw new Error('Tensor must be an object.')
    }
    const junk = join(tempDir('specserve-not-a-model-'), 'junk.onnx')
    writeFileSync(junk, 'not an onnx model')
    await expect(openSession(junk)).rejects.toThrow(/protobuf|parse|load/i)
    expect(binding.released).toBe(1)
  })
})
