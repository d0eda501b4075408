// The native session the inline lane runs (native.ts) against onnxruntime-node's public API,
// on every demo model: the same declared inputs and outputs, the same answers, and the
// same refusals.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { openSync } from '../../../src/executors/onnx/native.ts'
import { specsOf, toNativeFeeds, toOrtFeeds } from '../../../src/tensor/ort.ts'
import { root, samples } from '../../helpers.ts'

const OPTIONS = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' } as const
const files = readdirSync(join(root, 'models')).filter((f) => f.endsWith('.onnx'))

describe('the native session', () => {
  it.each(files)('%s: declares what the public API declares and answers the same', async (file) => {
    const path = join(root, 'models', file)
    const nat = openSync(path, OPTIONS)
    expect(nat).toBeDefined()
    if (!nat) return
    const pub = await ort.InferenceSession.create(path, OPTIONS)
    try {
      expect(specsOf(nat.inputMetadata, 'input')).toEqual(specsOf(pub.inputMetadata, 'input'))
      expect(specsOf(nat.outputMetadata, 'output')).toEqual(specsOf(pub.outputMetadata, 'output'))
      const { rows } = samples(file.split('_')[0]!)
      const inputs = { [pub.inputNames[0]!]: { datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) } } as const
      const fetches = Object.fromEntries(pub.outputNames.map((n) => [n, null]))
      const expected = await pub.run(toOrtFeeds(inputs))
      const got = nat.run(toNativeFeeds(inputs), fetches)
      expect(Object.keys(got)).toEqual(pub.outputNames)
      for (const name of pub.outputNames) {
        expect(got[name]!.dims).toEqual(expected[name]!.dims)
        expect(got[name]!.type).toBe(expected[name]!.type)
        expect(Array.from(got[name]!.data as ArrayLike<number | bigint>)).toEqual(Array.from(expected[name]!.data as ArrayLike<number | bigint>))
      }
    } finally {
      nat.release()
      await pub.release()
    }
  })

  it('refuses a wrong shape and a wrong element type with onnxruntime\'s message, and keeps running', () => {
    const nat = openSync(join(root, 'models', 'cancer_logreg.onnx'), OPTIONS)
    expect(nat).toBeDefined()
    if (!nat) return
    const fetches = { label: null, probabilities: null }
    try {
      expect(() => nat.run(toNativeFeeds({ input: { datatype: 'FP32', shape: [1, 29], data: new Float32Array(29) } }), fetches)).toThrow(/invalid dimensions for input: input/)
      expect(() => nat.run(toNativeFeeds({ input: { datatype: 'INT32', shape: [1, 30], data: new Int32Array(30) } }), fetches)).toThrow(/Unexpected input data type/)
      expect(nat.run(toNativeFeeds({ input: { datatype: 'FP32', shape: [2, 30], data: new Float32Array(60) } }), fetches).label!.dims).toEqual([2])
    } finally {
      nat.release()
    }
  })
})
