// The one comparison of outputs: before a swap and after it, each ensemble must declare every
// output it declared, of its name and datatype, with a shape no request could tell apart; a
// version the registry received is refused for what it takes, unless its model's
// `outputs_may_drop` lets that go.
import { describe, expect, it } from 'vitest'
import type { ModelConfig } from '../../src/config/load.ts'
import { keptOutputsRefusals, lackedOutputs, lostOutputs, lostText } from '../../src/registry/compatible.ts'
import type { EnsembleRuntime } from '../../src/starter/ensemble.ts'
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

const ensembles = (outputs: Record<string, TensorSpec[]>, models = ['main', 'sibling']): Map<string, EnsembleRuntime> =>
  new Map(Object.entries(outputs).map(([name, declared]) => [name, { name, outputs: declared, config: { models } } as unknown as EnsembleRuntime]))

describe('lostOutputs', () => {
  it("names, per ensemble in both, the outputs it declared before and not after; an ensemble added or removed loses nothing", () => {
    const before = ensembles({ cancer: [label, probs], gone: [label], kept: [label] })
    const after = ensembles({ cancer: [label], kept: [label, probs], added: [] })
    expect(lostOutputs(before, after)).toEqual([{ ensemble: 'cancer', models: ['main', 'sibling'], outputs: [probs] }])
    expect(lostText(lostOutputs(before, after))).toBe('ensemble "cancer" loses probabilities:FP32[-1,2]')
  })
})

describe('keptOutputsRefusals', () => {
  const model = (outputsMayDrop: string[]): ModelConfig => ({ name: 'main', version: '2', outputsMayDrop }) as unknown as ModelConfig
  const lost = lostOutputs(ensembles({ cancer: [label, probs] }), ensembles({ cancer: [] }))

  it('refuses an arriving model for the outputs its ensembles lose that outputs_may_drop does not list', () => {
    expect(keptOutputsRefusals(lost, new Set(['main']), new Map([['main', model([])]]), () => [label])).toEqual([
      { path: 'models.main', message: `version 2 would take away ensemble "cancer"'s label:INT64[-1] probabilities:FP32[-1,2] (the model's outputs would be label:INT64[-1]); list an output in models.main.outputs_may_drop to let it go` },
    ])
    expect(keptOutputsRefusals(lost, new Set(['main']), new Map([['main', model(['probabilities'])]]), () => [])[0]!.message).toMatch(/^version 2 would take away ensemble "cancer"'s label:INT64\[-1\] \(the model's outputs would be \(none\)\)/)
  })

  it('lets go what outputs_may_drop lists, and refuses nothing for a model not arriving or an ensemble not using it', () => {
    expect(keptOutputsRefusals(lost, new Set(['main']), new Map([['main', model(['label', 'probabilities'])]]), () => [])).toEqual([])
    expect(keptOutputsRefusals(lost, new Set(['other']), new Map([['other', model([])]]), () => [])).toEqual([])
  })
})
