// How an upstream's error body becomes the message in a model's annotation.
import { describe, expect, it } from 'vitest'
import { upstreamMessage } from '../../../src/executors/remote/errors.ts'

describe('upstreamMessage', () => {
  it('takes the error string of a JSON body (TF Serving, MLServer), then message, then detail', () => {
    expect(upstreamMessage('{"error": "Serving signature key \\"regression\\" not found."}')).toBe('Serving signature key "regression" not found.')
    expect(upstreamMessage('{"message": "model not ready"}')).toBe('model not ready')
    expect(upstreamMessage('{"detail": "Not Found"}')).toBe('Not Found')
  })

  it('keeps an excerpt of anything else: text, JSON without such a field, broken JSON', () => {
    expect(upstreamMessage('upstream connect error\n  or disconnect')).toBe('upstream connect error or disconnect')
    expect(upstreamMessage('{"status": {"code": 500}}')).toBe('{"status": {"code": 500}}')
    expect(upstreamMessage('{"error": ')).toBe('{"error":')
    expect(upstreamMessage('x'.repeat(300))).toHaveLength(201)
  })
})
