// What goes to an inference worker: each input's own bytes, not the buffer its view is in.
import { describe, expect, it } from 'vitest'
import { wireInputs } from '../../../src/executors/onnx/protocol.ts'
import type { TensorMap } from '../../../src/tensor/index.ts'

describe('wireInputs', () => {
  it('copies an input that is a view of a larger buffer into a buffer of its own', () => {
    const pool = new ArrayBuffer(64 * 1024)
    const view = new Float32Array(pool, 4096, 30).fill(0.5)
    const inputs: TensorMap = { input: { datatype: 'FP32', shape: [1, 30], data: view } }
    const wired = wireInputs(inputs).input!
    expect((wired.data as Float32Array).buffer.byteLength).toBe(30 * 4)
    expect(Array.from(wired.data as Float32Array)).toEqual(Array.from(view))
    expect(wired.shape).toEqual([1, 30])
    // The request's own tensor is left as it was (the serving record still reads it).
    expect(inputs.input!.data).toBe(view)
  })

  it('passes inputs that own their buffers (and BYTES) through as they are', () => {
    const inputs: TensorMap = {
      a: { datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, 2]) },
      s: { datatype: 'BYTES', shape: [1], data: ['x'] },
    }
    expect(wireInputs(inputs)).toBe(inputs)
  })
})
