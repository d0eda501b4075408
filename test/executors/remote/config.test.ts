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

  it('refuses a URL its scheme pattern takes but that is no URL (a port past 65535, no host) as a problem at models.<name>.url, not a crash', () => {
    for (const url of ['http://mlserver:80801', 'http://']) {
      expect(parse(`{ kind: oip, url: "${url}", model: a }`)).toThrow(ConfigError)
      expect(parse(`{ kind: oip, url: "${url}", model: a }`)).toThrow(/models\.m\.url.*not a valid URL/s)
    }
  })

  it('accepts every documented field', () => {
    const config = parse(
      '{ kind: oip, url: "grpc://x:1", model: a, seldon_model: a.pipeline, protocol: grpc, headers: { x-team: t }, pool_size: 4, timeout_ms: 50, retries: 2, retry_budget: { ratio: 0.1, min_per_second: 1 }, circuit_breaker: { failures: 2, reset_ms: 100 }, hedge_after_ms: 10, version: "3" }',
    )()
    expect(config.models.get('m')?.kind).toBe('oip')
  })

  it('refuses at load, with the path, headers that grpc-js or undici would refuse', () => {
    const problem = (model: string): string => {
      try {
        parse(model)()
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError)
        return (err as Error).message
      }
      return 'accepted'
    }
    expect(problem('{ kind: oip, url: "grpc://x:1", model: a, headers: { x-token-bin: abc } }')).toMatch(/models\.m\.headers\.x-token-bin.*binary/s)
    expect(problem('{ kind: oip, url: "grpc://x:1", model: a, headers: { x-team: "blé" } }')).toMatch(/models\.m\.headers\.x-team.*printable ASCII/s)
    expect(problem('{ kind: oip, url: "grpc://x:1", model: a, headers: { "x team": t } }')).toMatch(/models\.m\.headers\.x team.*metadata key/s)
    expect(problem('{ kind: oip, url: "http://x:1", model: a, headers: { x-a: "a\\r\\nx-injected: 1" } }')).toMatch(/models\.m\.headers\.x-a.*no line breaks/s)
    for (const hopByHop of ['connection', 'Transfer-Encoding', 'expect', 'keep-alive', 'upgrade', 'content-length']) {
      expect(problem(`{ kind: oip, url: "http://x:1", model: a, headers: { ${hopByHop}: "1" } }`)).toMatch(new RegExp(`headers\\.${hopByHop}.*managed by the transport`, 's'))
    }
    expect(problem('{ kind: seldon, url: "grpc://x:1", deployment: "a\\nb", inputs: [{ name: x, datatype: FP32, shape: [-1] }], outputs: [{ name: y, datatype: FP32, shape: [-1] }] }')).toMatch(/models\.m\.deployment.*printable ASCII/s)
    expect(problem('{ kind: oip, url: "grpc://x:1", model: a, headers: { x-team: blue, authorization: "Bearer t0k.en" } }')).toBe('accepted')
  })

  it('refuses URL parts that would be dropped (credentials, query, fragment, a gRPC path), pointing at headers', () => {
    expect(parse('{ kind: oip, url: "http://alice:s3cret@x:1/route", model: a }')).toThrow(/models\.m\.url.*credentials.*headers/s)
    expect(parse('{ kind: oip, url: "http://x:1/route?token=abc", model: a }')).toThrow(/models\.m\.url.*query or fragment.*headers/s)
    expect(parse('{ kind: oip, url: "http://x:1/route#top", model: a }')).toThrow(/models\.m\.url.*query or fragment/s)
    expect(parse('{ kind: oip, url: "grpc://x:1/some/prefix", model: a }')).toThrow(/models\.m\.url.*gRPC has no path prefix.*headers/s)
    expect(parse('{ kind: oip, url: "grpc://x:1/", model: a }')).not.toThrow()
    expect(parse('{ kind: oip, url: "http://x:1/route/", model: a }')).not.toThrow()
  })

  it('warns that rest_format does nothing for a TF Serving model called over gRPC', () => {
    const warnings = (model: string) => parse(model)().warnings.map((w) => `${w.path}: ${w.message}`)
    expect(warnings('{ kind: tfserving, url: "grpc://x:1", model: a, rest_format: row }')).toEqual([
      'models.m.rest_format: rest_format applies to REST calls: this model is called over gRPC, which has no row or columnar form',
    ])
    expect(warnings('{ kind: tfserving, url: "http://x:1", model: a, rest_format: row }')).toEqual([])
  })

  it('refuses a grpc:// URL without a port (it would dial port 80); grpcs:// defaults to 443', () => {
    expect(parse('{ kind: oip, url: "grpc://127.0.0.1", model: a }')).toThrow(/models\.m\.url: give the gRPC port: grpc:\/\/host:port/)
    expect(parse('{ kind: oip, url: "grpcs://x", model: a }')).not.toThrow()
    expect(parse('{ kind: oip, url: "grpc://x:80", model: a }')).not.toThrow()
  })

  it('refuses a Seldon BYTES input sent as data.tensor (doubles: strings would arrive as NaN)', () => {
    const io = (datatype: string) => `inputs: [{ name: x, datatype: ${datatype}, shape: [-1] }], outputs: [{ name: y, datatype: FP32, shape: [-1] }]`
    expect(parse(`{ kind: seldon, url: "grpc://x:1", ${io('BYTES')} }`)).toThrow(/models\.m\.inputs.*BYTES input cannot travel as data\.tensor.*data_format: ndarray/s)
    expect(parse(`{ kind: seldon, url: "http://x:1", data_format: tensor, ${io('BYTES')} }`)).toThrow(/models\.m\.data_format.*BYTES/s)
    expect(parse(`{ kind: seldon, url: "grpc://x:1", data_format: ndarray, ${io('BYTES')} }`)).not.toThrow()
    expect(parse(`{ kind: seldon, url: "grpc://x:1", ${io('FP32')} }`)).not.toThrow()
  })

  it('refuses durations a Node.js timer cannot hold (it would fire at once: every call timed out)', () => {
    expect(parse('{ kind: oip, url: "http://x:1", model: a, timeout_ms: 1e12 }')).toThrow(/models\.m\.timeout_ms: must be at most 2147483647 ms/)
    expect(parse('{ kind: oip, url: "http://x:1", model: a, hedge_after_ms: 3000000000 }')).toThrow(/models\.m\.hedge_after_ms: must be at most/)
    expect(parse('{ kind: oip, url: "http://x:1", model: a, circuit_breaker: { reset_ms: 1e13 } }')).toThrow(/models\.m\.circuit_breaker\.reset_ms: must be at most/)
    expect(parse('{ kind: oip, url: "http://x:1", model: a, timeout_ms: 2147483647 }')).not.toThrow()
  })
})
