// `specserve serve` and its telemetry as an operator reads its output: stdout stays JSON
// lines whatever OTEL_LOG_LEVEL says, and a final flush the collector refuses is one warning.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { describe, expect, it } from 'vitest'
import { cli, smallConfig } from './cli-run.ts'
import { freePort, outputContains, samples, startProcess } from './helpers.ts'

/** `serve` with these variables, stopped by SIGTERM once ready (and `meanwhile` done): its exit code, its stdout, and both streams. */
async function serveOnce(env: NodeJS.ProcessEnv, meanwhile?: (port: number) => Promise<void>): Promise<{ code: number | null; stdout: string; output: string }> {
  const port = await freePort()
  const proc = startProcess(process.execPath, [cli, 'serve', '-c', smallConfig()], { env: { SPECSERVE_REST_PORT: String(port), SPECSERVE_GRPC_PORT: 'off', ...env } })
  let stdout = ''
  proc.child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()))
  try {
    await outputContains(proc, '"msg":"ready"')
    await meanwhile?.(port)
    const code = await proc.stop('SIGTERM')
    return { code, stdout, output: proc.output() }
  } finally {
    await proc.stop('SIGKILL')
  }
}

describe('serve with telemetry', () => {
  it.each(['debug', 'verbose', 'all'])('OTEL_LOG_LEVEL=%s: every stdout line is a JSON log line', async (level) => {
    const { code, stdout } = await serveOnce({ OTEL_LOG_LEVEL: level, LOG_LEVEL: 'info' })
    expect(code).toBe(0)
    const raw = stdout.split('\n').filter((line) => line !== '' && !line.startsWith('{'))
    expect(raw).toEqual([])
  })

  it('a final flush the collector refuses is one warning, not also "not done"', async () => {
    const refusing = createServer((req, res) => req.resume().on('end', () => res.writeHead(401).end()))
    refusing.listen(0, '127.0.0.1')
    await once(refusing, 'listening')
    try {
      const endpoint = `http://127.0.0.1:${(refusing.address() as { port: number }).port}`
      // A predict's spans wait in the batch: the final flush sends them, and is refused.
      const predict = async (port: number): Promise<void> => {
        const res = await fetch(`http://127.0.0.1:${port}/v1/ensembles/e/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { input: [samples('cancer').rows[0]] } }) })
        expect(res.status).toBe(200)
      }
      const { code, output } = await serveOnce({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, predict)
      expect(code).toBe(0)
      expect(output).toContain('"msg":"telemetry flush failed"')
      expect(output).not.toContain('telemetry flush not done')
    } finally {
      refusing.close()
    }
  })
})
