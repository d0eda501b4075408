// The `specserve-result` trailer of a failed predict stays under 7 KiB whatever the result
// holds: past that, C-core clients (grpcio, tritonclient) fail the call with
// RESOURCE_EXHAUSTED and a grpc-js client loses its whole HTTP/2 session.
import { describe, expect, it } from 'vitest'
import { RESULT_KEY, resultStatus } from '../../../src/api/grpc/status.ts'
import type { ModelAnnotation, PredictResult } from '../../../src/types.ts'

const failed = (models: ModelAnnotation[], id = 'req-1'): PredictResult => ({
  id,
  ensemble: 'wide',
  strategy: 'majority-vote',
  outputs: null,
  decision: { chosen: null, reason: 'all-failed', votes: null },
  budget_ms: 50,
  elapsed_ms: 3.5,
  models,
  error: { code: 'ALL_MODELS_FAILED', message: 'every model of the ensemble failed' },
})
const member = (i: number, message: string): ModelAnnotation => ({ name: `m${i}`, version: '1', status: 'error', latency_ms: 1, used: false, error: { code: 'UPSTREAM_ERROR', message } })
const trailer = (result: PredictResult): string => String(resultStatus(result).metadata!.get(RESULT_KEY)[0])

describe('the specserve-result trailer', () => {
  it('is the whole failure body when it fits', () => {
    const text = trailer(failed([member(0, 'upstream said 500')]))
    expect(JSON.parse(text)).toMatchObject({ code: 'ALL_MODELS_FAILED', id: 'req-1', models: [{ name: 'm0', error: { message: 'upstream said 500' } }] })
    expect(text).not.toContain('truncated')
  })

  it('drops the per-model annotations, marked truncated, when long upstream messages would take it over 7 KiB', () => {
    const id = 'é'.repeat(512) // the longest id there is (1024 bytes), escaped to 3072 characters
    const result = failed(Array.from({ length: 40 }, (_, i) => member(i, `upstream answered: ${'x'.repeat(400)}`)), id)
    const text = trailer(result)
    expect(text.length).toBeLessThanOrEqual(7 * 1024)
    expect(text).toMatch(/^[\x20-\x7e]*$/)
    expect(JSON.parse(text)).toEqual({
      code: 'ALL_MODELS_FAILED',
      message: 'every model of the ensemble failed',
      id,
      ensemble: 'wide',
      strategy: 'majority-vote',
      outputs: null,
      decision: { chosen: null, reason: 'all-failed', votes: null },
      budget_ms: 50,
      elapsed_ms: 3.5,
      models: [],
      truncated: true,
    })
  })

  it('keeps only the code (and the id when it fits) when even the reduced form is too long', () => {
    const text = trailer({ ...failed([]), ensemble: 'e'.repeat(8000) })
    expect(JSON.parse(text)).toEqual({ code: 'ALL_MODELS_FAILED', id: 'req-1', truncated: true })
    expect(JSON.parse(trailer({ ...failed([], 'i'.repeat(8000)), ensemble: 'e'.repeat(8000) }))).toEqual({ code: 'ALL_MODELS_FAILED', truncated: true })
  })
})
