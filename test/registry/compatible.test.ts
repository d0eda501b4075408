// The one comparison a canary and a newer version swapped in are both held to: every output
// of the serving version, of its name and datatype, with a shape no request could tell apart.
import { describe, expect, it } from 'vitest'
import { lackedOutputs, outputsRefusal } from '../../src/registry/compatible.ts'
import type { TensorSpec } from '../../src/tensor/index.ts'

const label: TensorSpec = { name: 'label', datatype: 'INT64', shape: [-1] }
const probs: TensorSpec = { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] }

describe('lackedOutputs', () => {
  it('names each serving output missing, renamed, of another datatype or of a shape known to differ', () => {
    expect(lackedOutputs([label], [label, probs])).toEqual([probs])
    expect(lackedOutputs([label, { ...probs, name: 'probabilitiez' }], [label, probs])).toEqual([probs])
    expect(lackedOutputs([label, { ...probs, datatype: 'FP64' }], [label, probs])).toEqual([probs])
    expect(lackedOutputs([label, { ...probs, shape: [-1, 3] }], [label, probs])).toEqual([probs])
    expect(lackedOutputs([label, { ...probs, shape: [-1, 2, 1] }], [label, probs])).toEqual([probs])
    expect(lackedOutputs([label, { ...probs, shape: [-1], anyRank: true }], [label, probs])).toEqual([probs])
    expect(lackedOutputs([{ ...label, datatype: 'INT32' }], [label, probs])).toEqual([label, probs])
  })

  it('takes more outputs, any order, and a dimension -1 on either side', () => {
    const extra: TensorSpec = { name: 'extra', datatype: 'FP32', shape: [-1, 2] }
    expect(lackedOutputs([extra, probs, label], [label, probs])).toEqual([])
    expect(lackedOutputs([label, { ...probs, shape: [-1, -1] }], [label, probs])).toEqual([])
    expect(lackedOutputs([label, { ...probs, shape: [1, 2] }], [label, probs])).toEqual([])
    expect(lackedOutputs([], [])).toEqual([])
  })
})

describe('outputsRefusal', () => {
  it('says who lacks what, or nothing when nothing is lacked', () => {
    expect(outputsRefusal('version 2', [label], [label, probs])).toBe("version 2's outputs label:INT64[-1] lack the serving version's probabilities:FP32[-1,2]")
    expect(outputsRefusal('version 2', [], [label])).toBe("version 2's outputs (none) lack the serving version's label:INT64[-1]")
    expect(outputsRefusal('the canary', [label, probs], [label])).toBeUndefined()
  })
})
