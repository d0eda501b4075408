// What a canary's evidence decides: a classifier's canary is promoted only on agreement it
// has shown. Stub executors answer at once; every run goes to the canary (weight 1).
import { describe, expect, it, vi } from 'vitest'
import type { Executor, InferContext } from '../../src/executors/types.ts'
import { CanaryExecutor, type CanaryEvidence } from '../../src/registry/canary.ts'
import type { CanarySettings } from '../../src/registry/config.ts'
import { canaryVerdict, evidenceRecord } from '../../src/registry/rollout.ts'
import type { TensorMap, TensorSpec } from '../../src/tensor/index.ts'

const settings: CanarySettings = { weight: 1, promoteAfter: 3, maxErrorRate: 0.01, minAgreement: 0.9 }
const label: TensorSpec = { name: 'label', datatype: 'INT64', shape: [-1] }
const value: TensorSpec = { name: 'value', datatype: 'FP32', shape: [-1] }
const labelled = (n: bigint): TensorMap => ({ label: { datatype: 'INT64', shape: [1], data: BigInt64Array.of(n) } })
const valued = (v: number): TensorMap => ({ value: { datatype: 'FP32', shape: [1], data: Float32Array.of(v) } })

function stub(outputs: TensorSpec[], answer: () => Promise<TensorMap>): Executor {
  return {
    name: 'm',
    kind: 'stub',
    metadata: () => ({ name: 'm', version: '1', kind: 'stub', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs }),
    load: () => Promise.resolve(),
    infer: answer,
    close: () => Promise.resolve(),
  }
}

const ctx: InferContext = { signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: Number.POSITIVE_INFINITY }

/** Runs `promote_after` canary requests and returns the evidence reported once they and their comparisons are in. */
async function evidenceOf(stable: Executor, canary: Executor): Promise<CanaryEvidence> {
  let decided: (evidence: CanaryEvidence) => void = () => undefined
  const reported = new Promise<CanaryEvidence>((resolve) => (decided = resolve))
  const executor = new CanaryExecutor(stable, canary, { version: '2', spec: {}, settings, decide: (evidence) => decided(evidence) })
  await executor.load()
  for (let i = 0; i < settings.promoteAfter; i++) await executor.infer({}, ctx)
  return reported
}

describe('canary verdict', () => {
  it('rolls back a classifier whose serving version never answered the comparison: no agreement was shown', async () => {
    const evidence = await evidenceOf(
      stub([label], () => Promise.reject(new Error('serving version down'))),
      stub([label], () => Promise.resolve(labelled(1n))),
    )
    expect(evidence).toMatchObject({ requests: 3, errors: 0, compared: 0, uncompared: 3, agreement: null, labeled: true })
    expect(canaryVerdict(evidence, settings)).toEqual({ promote: false, reason: expect.stringMatching(/^no canary answer could be compared with the serving version's \(3 /) })
  })

  it('rolls back a canary that answers without the label the serving version gives', async () => {
    const evidence = await evidenceOf(
      stub([label], () => Promise.resolve(labelled(1n))),
      stub([label], () => Promise.resolve(valued(0.5))),
    )
    expect(evidence).toMatchObject({ compared: 0, uncompared: 3, labeled: true })
    expect(canaryVerdict(evidence, settings).promote).toBe(false)
  })

  it('promotes a classifier that agreed, and a regression on its error rate alone (it has no agreement)', async () => {
    const agreeing = await evidenceOf(stub([label], () => Promise.resolve(labelled(1n))), stub([label], () => Promise.resolve(labelled(1n))))
    expect(agreeing).toMatchObject({ compared: 3, agreed: 3, agreement: 1, uncompared: 0 })
    expect(canaryVerdict(agreeing, settings)).toEqual({ promote: true })
    const regression = await evidenceOf(stub([value], () => Promise.resolve(valued(1))), stub([value], () => Promise.resolve(valued(2))))
    expect(regression).toMatchObject({ compared: 0, agreement: null, labeled: false })
    expect(canaryVerdict(regression, settings)).toEqual({ promote: true })
  })

  it('keeps the numbers in meta.json', () => {
    const evidence: CanaryEvidence = { requests: 3, errors: 0, error_rate: 0, compared: 0, agreed: 0, agreement: null, uncompared: 3, labeled: true }
    expect(evidenceRecord(evidence)).toEqual({ requests: 3, errors: 0, error_rate: 0, compared: 0, agreed: 0, agreement: null, uncompared: 3 })
  })
})

describe('the comparison with the serving version', () => {
  it('gives up after 5 s on a serving version that never answers: uncompared, and the canary is decided', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      let evidence: CanaryEvidence | undefined
      void evidenceOf(
        stub([label], () => new Promise<TensorMap>(() => undefined)),
        stub([label], () => Promise.resolve(labelled(1n))),
      ).then((e) => (evidence = e))
      await vi.advanceTimersByTimeAsync(4_999)
      expect(evidence).toBeUndefined()
      await vi.advanceTimersByTimeAsync(1)
      expect(evidence).toMatchObject({ requests: 3, compared: 0, uncompared: 3 })
    } finally {
      vi.useRealTimers()
    }
  })
})
