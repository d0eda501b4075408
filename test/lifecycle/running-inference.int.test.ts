// A stop while a worker is inside an inference, which nothing can interrupt: the grace bounds
// the wait for it, and a second signal ends the process at once. process.exit() would wait
// for the run to end (a run with no end: for ever), then onnxruntime would abort the process.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeCubicModel } from '../executors/onnx/hand-made-models.ts'
import { freePort, outputContains, root, startProcess, type Proc } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { eventually } from '../output/serve.ts'

/** A gateway serving a model whose run on K = 6000 takes seconds, in a worker; its REST URL. */
async function serveCubic(graceMs: number): Promise<{ proc: Proc; url: string }> {
  const dir = tempDir('specserve-running-')
  writeCubicModel(join(dir, 'cubic.onnx'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(
    file,
    `server: { shutdown_grace_ms: ${graceMs} }
models: { cubic: { kind: onnx, path: cubic.onnx, placement: worker } }
ensembles: { e: { strategy: deadline-fallback, models: [cubic], budget_ms: { default: 60000, max: 60000 } } }
`,
  )
  const port = await freePort()
  const proc = startProcess(process.execPath, [join(root, 'src', 'cli.ts'), 'serve', '-c', file], { env: { SPECSERVE_REST_PORT: String(port), SPECSERVE_GRPC_PORT: 'off', LOG_LEVEL: 'info' } })
  await outputContains(proc, '"msg":"ready"')
  return { proc, url: `http://127.0.0.1:${port}` }
}

/** Starts the long run, and resolves once a worker is inside it (the busy gauge says so). */
async function startLongRun(url: string): Promise<void> {
  const body = JSON.stringify({ inputs: { input: [[1, 2, 3, 6000]] } })
  fetch(`${url}/v1/ensembles/e/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).catch(() => undefined)
  await eventually('a worker busy', () => fetch(`${url}/metrics`).then((r) => r.text()), (text) => /^specserve_onnx_workers_busy(\{[^}]*\})? 1$/m.test(text))
}

/** How the process ended, once its output is read to the end ('close', not 'exit'). */
const ended = (proc: Proc): Promise<[number | null, NodeJS.Signals | null]> =>
  new Promise((resolve) => proc.child.once('close', (code, signal) => resolve([code, signal])))

describe('a stop while an inference runs in a worker', () => {
  it('ends at the grace, by the signal, without waiting for the run', { timeout: 60_000 }, async () => {
    const { proc, url } = await serveCubic(300)
    try {
      await startLongRun(url)
      const exit = ended(proc)
      process.kill(proc.child.pid!, 'SIGTERM')
      // Ended by SIGTERM's default action (143 to a shell), not exit 0 once the run is over, nor an abort (134).
      expect(await exit).toEqual([null, 'SIGTERM'])
      expect(proc.output()).toMatch(/"grace_ms":300.*"msg":"grace period over: an inference still runs in a worker; exiting without it"/)
    } finally {
      await proc.stop('SIGKILL')
    }
  })

  it('ends at a second signal, by that signal, without waiting for the run', { timeout: 60_000 }, async () => {
    const { proc, url } = await serveCubic(60_000)
    try {
      await startLongRun(url)
      const exit = ended(proc)
      process.kill(proc.child.pid!, 'SIGTERM')
      await outputContains(proc, '"msg":"draining"')
      process.kill(proc.child.pid!, 'SIGINT')
      expect(await exit).toEqual([null, 'SIGINT'])
      expect(proc.output()).toContain('"msg":"second signal: exiting without waiting for the drain"')
    } finally {
      await proc.stop('SIGKILL')
    }
  })
})
