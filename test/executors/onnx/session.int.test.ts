// openSession's choice between the native session and the public API when the binding does
// not behave as native.ts expects: native.ts is replaced by a session whose first run throws
// or leaves an output out; the public API under it is the real one.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ort from 'onnxruntime-node'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
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
afterEach(() => {
  vi.restoreAllMocks()
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

  it("releases the public API's session when its warm-up fails, on every load attempt", async () => {
    binding.firstRun = () => {
      throw new Error('Tensor must be an object.')
    }
    // The real public session, whose runs fail as a model's whose warm-up zeros it refuses (a MatMul dimension mismatch).
    const create = ort.InferenceSession.create.bind(ort.InferenceSession) as (path: string, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>
    let created = 0
    let released = 0
    vi.spyOn(ort.InferenceSession, 'create').mockImplementation((async (path: string, options: ort.InferenceSession.SessionOptions) => {
      const session = await create(path, options)
      created++
      const release = session.release.bind(session)
      return Object.assign(session, {
        run: () => Promise.reject(new Error('MatMul dimension mismatch')),
        release: () => {
          released++
          return release()
        },
      })
    }) as never)
    for (let attempt = 0; attempt < 3; attempt++) await expect(openSession(model)).rejects.toThrow('MatMul dimension mismatch')
    expect(created).toBe(3)
    expect(released).toBe(3)
    expect(binding.released).toBe(3)
  })
})
