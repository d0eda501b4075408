// What a canary answers and fails with, for the model it stands in for: the outputs both
// versions give, whichever answers (whether its ensembles may lose one the canary lacks is
// decided where they are compared: outputs-kept.int.test.ts), a canary whose inputs differ is
// refused at load, and its failures are named with its version without touching error objects
// other models' failures share.
import { describe, expect, it } from 'vitest'
import { ModelError } from '../../src/errors.ts'
import { RAN_VERSION, type BatchedOutputs, type Executor, type InferContext } from '../../src/executors/types.ts'
import { CanaryExecutor } from '../../src/registry/canary.ts'
import { IncompatibleVersion } from '../../src/registry/compatible.ts'
import type { CanarySettings } from '../../src/registry/config.ts'
import { failure } from '../../src/starter/outcomes.ts'
import type { TensorMap, TensorSpec } from '../../src/tensor/index.ts'

const settings: CanarySettings = { weight: 1, promoteAfter: 1000, maxErrorRate: 0.01, minAgreement: 0.9 }
const label: TensorSpec = { name: 'label', datatype: 'INT64', shape: [-1] }
const probs = (datatype: 'FP32' | 'FP64', classes: number): TensorSpec => ({ name: 'probabilities', datatype, shape: [-1, classes] })
const extra: TensorSpec = { name: 'extra', datatype: 'FP32', shape: [-1] }
const answer: TensorMap = {
  label: { datatype: 'INT64', shape: [1], data: BigInt64Array.of(1n) },
  probabilities: { datatype: 'FP32', shape: [1, 2], data: Float32Array.of(0, 1) },
  extra: { datatype: 'FP32', shape: [1], data: Float32Array.of(7) },
}
const ctx: InferContext = { signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: Number.POSITIVE_INFINITY }

function stub(outputs: TensorSpec[], infer: () => Promise<TensorMap>): Executor {
  return {
    name: 'm',
    kind: 'stub',
    metadata: () => ({ name: 'm', version: '1', kind: 'stub', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs }),
    load: () => Promise.resolve(),
    infer,
    close: () => Promise.resolve(),
  }
}

const canaryOf = (stable: Executor, canary: Executor): CanaryExecutor => new CanaryExecutor(stable, canary, { version: '2', spec: {}, settings, decide: () => undefined })

describe('canary outputs', () => {
  it('answers with the serving version outputs only, when the canary produces more', async () => {
    const executor = canaryOf(
      stub([label, probs('FP32', 2)], () => Promise.resolve(answer)),
      stub([label, probs('FP32', 2), extra], () => Promise.resolve(answer)),
    )
    await executor.load()
    const outputs = (await executor.infer({}, ctx)) as BatchedOutputs
    expect(Object.keys(outputs)).toEqual(['label', 'probabilities'])
    expect(outputs[RAN_VERSION]).toBe('2')
  })

  it('declares, and answers with, only what both give when the canary lacks an output of the serving version (of its datatype and shape)', async () => {
    for (const theirs of [[label], [label, probs('FP64', 2)], [label, probs('FP32', 3)]]) {
      // Each answers with what it declares (a wrong probabilities answers with none here: it is cut either way).
      const gives = (names: string[]): TensorMap => Object.fromEntries(Object.entries(answer).filter(([name]) => names.includes(name)))
      const executor = canaryOf(stub([label, probs('FP32', 2), extra], () => Promise.resolve(answer)), stub([...theirs, extra], () => Promise.resolve(gives(['label', 'extra']))))
      await executor.load()
      expect(executor.metadata().outputs).toEqual([label, extra])
      // Both versions' answers are cut to those: the serving version's too (it runs the runs the canary does not).
      expect(Object.keys(await executor.infer({}, ctx))).toEqual(['label', 'extra'])
      expect(Object.keys(await executor.stable.infer({}, ctx))).toEqual(['label', 'probabilities', 'extra'])
    }
  })

  it('answers with the serving version cut to what both give on the runs it takes', async () => {
    const executor = new CanaryExecutor(stub([label, probs('FP32', 2)], () => Promise.resolve(answer)), stub([label], () => Promise.resolve(answer)), { version: '2', spec: {}, settings: { ...settings, weight: 0 }, decide: () => undefined })
    await executor.load()
    const outputs = (await executor.infer({}, ctx)) as BatchedOutputs
    expect(Object.keys(outputs)).toEqual(['label'])
    expect(outputs[RAN_VERSION]).toBeUndefined()
  })

  it('refuses at load a canary whose inputs differ, as a refusal (the file loaded)', async () => {
    const other = stub([label], () => Promise.resolve(answer))
    const executor = canaryOf(stub([label], () => Promise.resolve(answer)), { ...other, metadata: () => ({ ...other.metadata(), inputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] }) })
    await expect(executor.load()).rejects.toThrow(/^the canary's inputs .* differ from the serving version's/)
    await expect(executor.load()).rejects.toBeInstanceOf(IncompatibleVersion)
  })
})

describe('canary failures', () => {
  it('name the canary version without writing it on an error another model fails with too', async () => {
    // One error object for many runs, as a closing model, a crashed worker or a request's abort reason gives.
    const shared = new ModelError('MODEL_FAILED', 'model unloaded', true)
    const executor = canaryOf(
      stub([label], () => Promise.resolve(answer)),
      stub([label], () => Promise.reject(shared)),
    )
    await executor.load()
    const thrown = await executor.infer({}, ctx).catch((err: unknown) => err)
    expect(failure(0, thrown, 1)).toMatchObject({ status: 'skipped', error: { code: 'MODEL_FAILED', message: 'model unloaded' }, version: '2' })
    // Another model failing with the same object is not annotated with the canary's version.
    expect(failure(1, shared, 1)).toMatchObject({ status: 'skipped', version: undefined })
    expect(Object.getOwnPropertySymbols(shared)).toEqual([])
  })
})
