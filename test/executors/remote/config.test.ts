// The remote kinds' config, checked at load with paths: unknown fields, bad URLs, fields
// that exclude each other, unreadable TLS files.
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../../src/config/load.ts'
import { ConfigError } from '../../../src/config/yaml.ts'

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
