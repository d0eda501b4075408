// The standard OTEL_* variables as a deploy sets them: a metric export interval that is not a
// number of milliseconds, the SDK disabled, an exporter set to `none` beside a YAML endpoint,
// the service named in the resource attributes, what the resource shows (and the detectors
// an operator names), a sampler beside the YAML ratio.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import '../starter/scripted.ts'
import { buildServer } from '../../src/api/rest/server.ts'
import { inputFailure } from '../../src/errors.ts'
import { Gateway } from '../../src/gateway.ts'
import { startTelemetry, traceIdOf } from '../../src/telemetry/index.ts'
import { activeTracer } from '../../src/telemetry/tracing.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import { configFrom } from '../helpers.ts'

/** An OTLP/HTTP receiver: the paths of the requests it got. */
let receiver: Server
let endpoint: string
const received: string[] = []

beforeAll(async () => {
  receiver = createServer((req, res) => {
    received.push(req.url ?? '')
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
  })
  receiver.listen(0, '127.0.0.1')
  await once(receiver, 'listening')
  endpoint = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`
})

afterAll(() => receiver.close())

afterEach(() => {
  vi.unstubAllEnvs()
  vi.restoreAllMocks()
  received.length = 0
})

const configWith = (telemetry: string) =>
  configFrom(`
telemetry: ${telemetry}
models: { m: { kind: scripted, delay_ms: 1 } }
ensembles: { e: { strategy: deadline-fallback, models: [m] } }
`)

describe('OTEL_METRIC_EXPORT_INTERVAL', () => {
  it('that is not a number of milliseconds (60s) is reported, and metrics go out every 60 s, not every 1 ms', async () => {
    vi.stubEnv('OTEL_METRIC_EXPORT_INTERVAL', '60s')
    const timers = vi.spyOn(globalThis, 'setInterval')
    const warnings: string[] = []
    const config = configWith(`{ otlp_endpoint: "${endpoint}", prometheus: false }`)
    const gateway = new Gateway(config)
    const telemetry = startTelemetry(gateway, config.telemetry, { warn: (message) => warnings.push(message) })
    try {
      const delays = timers.mock.calls.map((call) => call[1])
      expect(delays).toContain(60_000)
      expect(delays.some((ms) => typeof ms !== 'number' || !(ms >= 1))).toBe(false)
      expect(warnings).toEqual([expect.stringContaining('OTEL_METRIC_EXPORT_INTERVAL="60s"')])
    } finally {
      await telemetry.shutdown()
      await gateway.close()
    }
  })

  it('beyond what a timer can wait (which Node would run every 1 ms) is refused too', async () => {
    vi.stubEnv('OTEL_METRIC_EXPORT_INTERVAL', String(2 ** 31))
    const timers = vi.spyOn(globalThis, 'setInterval')
    const warnings: string[] = []
    const config = configWith(`{ otlp_endpoint: "${endpoint}", prometheus: false }`)
    const gateway = new Gateway(config)
    const telemetry = startTelemetry(gateway, config.telemetry, { warn: (message) => warnings.push(message) })
    try {
      expect(timers.mock.calls.map((call) => call[1])).toContain(60_000)
      expect(warnings).toHaveLength(1)
    } finally {
      await telemetry.shutdown()
      await gateway.close()
    }
  })
})

describe('OTEL_SDK_DISABLED=true', () => {
  it('leaves GET /metrics serving the gateway\'s metrics (OTLP and tracing off)', async () => {
    vi.stubEnv('OTEL_SDK_DISABLED', 'true')
    const config = configWith(`{ otlp_endpoint: "${endpoint}" }`)
    const gateway = new Gateway(config)
    const telemetry = startTelemetry(gateway, config.telemetry)
    const app = buildServer(config, { gateway, telemetry })
    try {
      await gateway.load()
      await app.ready()
      expect(telemetry.tracing).toBe(false)
      expect((await app.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: { inputs: { x: [[1, 2]] } } })).statusCode).toBe(200)
      const res = await app.inject('/metrics')
      expect(res.statusCode).toBe(200)
      expect(res.body).toContain('specserve_predict_requests_total{ensemble="e",outcome="ok"} 1')
      expect(res.body).toContain('service_name="specserve"')
    } finally {
      await app.close()
      await gateway.close()
      await telemetry.shutdown()
    }
    expect(received).toEqual([]) // nothing was exported over OTLP, not even at shutdown
  })
})

describe('OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER = none', () => {
  it('turns that OTLP export off even with telemetry.otlp_endpoint in the YAML', async () => {
    vi.stubEnv('OTEL_TRACES_EXPORTER', 'none')
    vi.stubEnv('OTEL_METRICS_EXPORTER', 'none')
    const config = configWith(`{ otlp_endpoint: "${endpoint}", prometheus: false }`)
    const gateway = new Gateway(config)
    const telemetry = startTelemetry(gateway, config.telemetry)
    try {
      expect(telemetry.tracing).toBe(false)
      expect(activeTracer()).toBeNull()
    } finally {
      await telemetry.shutdown() // would flush the metrics to the receiver if they were exported
      await gateway.close()
    }
    expect(received).toEqual([])
  })

  it('leaves the other signal going to the YAML endpoint', async () => {
    vi.stubEnv('OTEL_TRACES_EXPORTER', 'none')
    const config = configWith(`{ otlp_endpoint: "${endpoint}", prometheus: false }`)
    const gateway = new Gateway(config)
    const telemetry = startTelemetry(gateway, config.telemetry)
    expect(telemetry.tracing).toBe(false)
    await telemetry.shutdown()
    await gateway.close()
    expect(received).toContain('/v1/metrics')
  })
})

/** GET /metrics of a gateway with this telemetry section (the Prometheus exporter's target_info carries the resource). */
async function scrape(telemetry: string): Promise<string> {
  const config = configWith(telemetry)
  const gateway = new Gateway(config)
  const started = startTelemetry(gateway, config.telemetry)
  const app = buildServer(config, { gateway, telemetry: started })
  try {
    await app.ready()
    return (await app.inject('/metrics')).body
  } finally {
    await app.close()
    await gateway.close()
    await started.shutdown()
  }
}

const serviceOf = (metrics: string): string | undefined => /^target_info\{[^}]*\bservice_name="([^"]*)"/m.exec(metrics)?.[1]

describe('the service name from the environment', () => {
  it('service.name in OTEL_RESOURCE_ATTRIBUTES wins over the default', async () => {
    vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment=prod,service.name=fraud-gw')
    expect(serviceOf(await scrape('{}'))).toBe('fraud-gw')
  })

  it('and over telemetry.service_name; OTEL_SERVICE_NAME wins over both', async () => {
    vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'service.name=fraud-gw')
    expect(serviceOf(await scrape('{ service_name: gw-yaml }'))).toBe('fraud-gw')
    vi.stubEnv('OTEL_SERVICE_NAME', 'fraud-gw-eu')
    expect(serviceOf(await scrape('{ service_name: gw-yaml }'))).toBe('fraud-gw-eu')
  })

  it('with the SDK disabled too', async () => {
    vi.stubEnv('OTEL_SDK_DISABLED', 'true')
    vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'service.name=fraud-gw')
    expect(serviceOf(await scrape('{}'))).toBe('fraud-gw')
  })

  it('without it, telemetry.service_name, else specserve', async () => {
    expect(serviceOf(await scrape('{ service_name: gw-yaml }'))).toBe('gw-yaml')
    expect(serviceOf(await scrape('{}'))).toBe('specserve')
  })
})

/** The labels of target_info, the resource as /metrics shows it. */
const targetInfo = (metrics: string): Record<string, string> => {
  const labels = /^target_info\{([^}]*)\}/m.exec(metrics)?.[1] ?? ''
  return Object.fromEntries([...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]))
}

describe('target_info (shown to any caller allowed metrics)', () => {
  const WITHHELD = ['process_command', 'process_command_args', 'process_command_line', 'process_executable_path', 'process_owner', 'host_id']

  it.each([['running', false], ['disabled', true]])('with the SDK %s: the service, host name and pid, not the command line, the user, paths or the machine id', async (_what, disabled) => {
    if (disabled) vi.stubEnv('OTEL_SDK_DISABLED', 'true')
    const info = targetInfo(await scrape('{}'))
    expect(info).toMatchObject({ service_name: 'specserve', host_name: expect.any(String), host_arch: expect.any(String), process_pid: String(process.pid), process_runtime_name: 'nodejs' })
    for (const label of WITHHELD) expect(Object.keys(info)).not.toContain(label)
  })

  it('OTEL_NODE_RESOURCE_DETECTORS is the operator\'s own choice, taken as the SDK takes it', async () => {
    vi.stubEnv('OTEL_NODE_RESOURCE_DETECTORS', 'env,process')
    expect(targetInfo(await scrape('{}'))).toHaveProperty('process_command_args')
  })
})

/** The trace id of one predict (as its serving record carries it), null when the trace was not sampled. */
async function tracedPredict(telemetry: string, warn?: (message: string) => void): Promise<string | null> {
  const config = configWith(telemetry)
  const gateway = new Gateway(config)
  const started = startTelemetry(gateway, config.telemetry, { spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())], ...(warn && { warn }) })
  try {
    await gateway.load()
    const spec = gateway.ensemble('e').inputs[0]!
    const result = await gateway.predict({ id: 'sampled-1', ensemble: 'e', inputs: { x: tensorFromJson([[0.5, 0.5]], spec, inputFailure) } })
    expect(result.error).toBeNull()
    return traceIdOf(result)
  } finally {
    await gateway.close()
    await started.shutdown()
  }
}

describe('OTEL_TRACES_SAMPLER beside telemetry.sample_ratio', () => {
  it('a sampler the environment names wins over the YAML ratio', async () => {
    vi.stubEnv('OTEL_TRACES_SAMPLER', 'always_on')
    expect(await tracedPredict('{ sample_ratio: 0, prometheus: false }')).toMatch(/^[0-9a-f]{32}$/)
  })

  it('without one, the YAML ratio applies', async () => {
    expect(await tracedPredict('{ sample_ratio: 0, prometheus: false }')).toBeNull()
  })

  it('one the SDK does not know is reported, and the YAML ratio applies (not the SDK\'s record-everything fallback)', async () => {
    vi.stubEnv('OTEL_TRACES_SAMPLER', 'ratio')
    const warnings: string[] = []
    expect(await tracedPredict('{ sample_ratio: 0, prometheus: false }', (message) => warnings.push(message))).toBeNull()
    expect(warnings).toEqual([expect.stringMatching(/^OTEL_TRACES_SAMPLER="ratio" is not one of .*: using telemetry.sample_ratio \(0\)$/)])
  })
})
