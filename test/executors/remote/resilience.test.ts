// The resilience parts on their own, with an explicit clock: breaker states and the retry
// budget's cap on extra load; and the answer mapping's verdicts on malformed tensors.
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../../src/config/load.ts'
import { ConfigError } from '../../../src/config/yaml.ts'
import { CircuitBreaker } from '../../../src/executors/remote/breaker.ts'
import { RetryBudget } from '../../../src/executors/remote/retry-budget.ts'
import { toDeclared, type RawTensor } from '../../../src/executors/remote/tensors.ts'

describe('circuit breaker', () => {
  it('opens after N consecutive failures, lets one probe through after reset_ms, closes on its success', () => {
    const b = new CircuitBreaker({ failures: 3, resetMs: 1000 })
    b.failure(0)
    b.success() // a success in between resets the count
    for (let t = 1; t <= 3; t++) b.failure(t)
    expect(b.state).toBe('open')
    expect(b.allow(500)).toBe(false)
    expect(b.retryInMs(500)).toBe(503)
    expect(b.allow(1003)).toBe(true) // the probe
    expect(b.state).toBe('half-open')
    expect(b.allow(1004)).toBe(false) // one probe at a time
    b.success()
    expect(b.state).toBe('closed')
    expect(b.allow(1005)).toBe(true)
  })

  it('a failed probe opens it again; a cancelled probe frees the slot', () => {
    const b = new CircuitBreaker({ failures: 1, resetMs: 100 })
    b.failure(0)
    expect(b.allow(100)).toBe(true)
    b.release()
    expect(b.allow(101)).toBe(true)
    b.failure(101)
    expect(b.state).toBe('open')
    expect(b.allow(150)).toBe(false)
  })
})

describe('retry budget', () => {
  it('never lets retries exceed the ratio of first attempts, beyond the per-second allowance', () => {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 2 })
    let retries = 0
    for (let i = 0; i < 100; i++) {
      budget.deposit()
      if (budget.withdraw(10)) retries++ // every call fails and wants a retry, all in one second
    }
    // The allowance, plus at most one per five first attempts (float sums may round one down).
    expect(retries).toBeLessThanOrEqual(2 + 100 * 0.2)
    expect(retries).toBeGreaterThanOrEqual(2 + 100 * 0.2 - 1)
  })
})

describe('answer mapping', () => {
  const outputs = [
    { spec: { name: 'label', datatype: 'INT64' as const, shape: [-1] }, upstream: 'predict' },
    { spec: { name: 'probabilities', datatype: 'FP32' as const, shape: [-1, 3] }, upstream: 'predict_proba' },
  ]
  const raw = (entries: Record<string, RawTensor>) => new Map(Object.entries(entries))
  const good = { predict: { datatype: 'INT64', shape: [2, 1], data: [1, 0] }, predict_proba: { datatype: 'FP64', shape: [2, 3], data: [0.1, 0.8, 0.1, 0.7, 0.2, 0.1] } }

  it('renames, converts FP64 to the declared FP32, and fits [N, 1] to a declared [-1]', () => {
    const out = toDeclared(raw(good), outputs, 2)
    expect(out.label).toEqual({ datatype: 'INT64', shape: [2], data: new BigInt64Array([1n, 0n]) })
    expect(out.probabilities!.data).toBeInstanceOf(Float32Array)
    expect(out.probabilities!.shape).toEqual([2, 3])
  })

  it.each([
    ['a missing output', { predict: good.predict }, /no output "predict_proba"/],
    ['a wrong shape', { ...good, predict_proba: { shape: [2, 2], data: [1, 2, 3, 4] } }, /does not match declared/],
    ['too few elements for the shape', { ...good, predict_proba: { shape: [2, 3], data: [1, 2, 3] } }, /do not fill/],
    ['a wrong batch', { ...good, predict: { shape: [3], data: [1, 0, 1] } }, /3 rows for a batch of 2/],
    ['a fraction for an integer output', { ...good, predict: { shape: [2], data: [1.5, 0] } }, /not a INT64/],
    ['strings for numbers', { ...good, predict_proba: { shape: [2, 3], data: ['a', 1, 1, 1, 1, 1] } }, /not a number/],
    ['a ragged nested answer', { ...good, predict_proba: { data: [[1, 2, 3], [1, 2]] } }, /ragged/],
  ])('rejects %s as UPSTREAM_BAD_RESPONSE', (_what, answer, message) => {
    let error: unknown
    try {
      toDeclared(raw(answer as Record<string, RawTensor>), outputs, 2)
    } catch (err) {
      error = err
    }
    expect(error).toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE', message: expect.stringMatching(message) as unknown })
  })
})

describe('remote model config', () => {
  const parse = (model: string) => () =>
    parseConfig(`models:\n  m: ${model}\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n`, '/tmp/remote.yaml')

  it('rejects unknown fields, bad URLs and a Seldon model without its one input and output, with paths', () => {
    expect(parse('{ kind: oip, url: "http://x:1", model: a, pool: 3 }')).toThrow(ConfigError)
    expect(parse('{ kind: oip, url: "ftp://x:1", model: a }')).toThrow(/url/)
    expect(parse('{ kind: seldon, url: "http://x:1" }')).toThrow(/models\.m\.inputs.*exactly one input/s)
    expect(parse('{ kind: tfserving, url: "grpc://x:1", model: a, version: 2, version_label: stable }')).toThrow(/version or version_label/)
    expect(parse('{ kind: oip, url: "http://x:1", model: a, tls: { ca: /nonexistent/ca.pem } }')).toThrow(/tls\.ca/)
    // Classify and Regress send tf.Examples: the features come from YAML only.
    expect(parse('{ kind: tfserving, url: "http://x:1", model: a, method: classify }')).toThrow(/models\.m\.inputs.*method classify sends tf\.Examples/s)
    expect(parse('{ kind: tfserving, url: "http://x:1", model: a, method: regress, rest_format: row, inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }] }')).toThrow(/rest_format applies to predict/)
    expect(parse('{ kind: tfserving, url: "http://x:1", model: a, method: explain }')).toThrow(/method/)
  })

  it('accepts every documented field', () => {
    const config = parse(
      '{ kind: oip, url: "grpc://x:1", model: a, seldon_model: a.pipeline, protocol: grpc, headers: { x-team: t }, pool_size: 4, timeout_ms: 50, retries: 2, retry_budget: { ratio: 0.1, min_per_second: 1 }, circuit_breaker: { failures: 2, reset_ms: 100 }, hedge_after_ms: 10, version: "3" }',
    )()
    expect(config.models.get('m')?.kind).toBe('oip')
  })
})
