// Starts `specserve serve` as a real process on free ports, for the e2e interop tests,
// and resolves once the gateway reports ready over V2 REST.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, root, startProcess, waitForPort, type Proc } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

export interface Served {
  proc: Proc
  restPort: number
  grpcPort: number
  dir: string
}

/**
 * `models` and `ensembles` are YAML bodies (indented two spaces); ONNX paths absolute or relative to the repo.
 * The config goes to `dir`, by default a tempDir() removed after the test file.
 */
export async function serve(models: string, ensembles: string, dir = tempDir('specserve-e2e-')): Promise<Served> {
  const [restPort, grpcPort] = [await freePort(), await freePort()]
  const file = join(dir, 'config.yaml')
  writeFileSync(file, `server: { host: 127.0.0.1, rest_port: ${restPort}, grpc_port: ${grpcPort} }\nexecutors: { onnx_workers: 2 }\nmodels:\n${models}\nensembles:\n${ensembles}\n`)
  const proc = startProcess(process.execPath, ['src/cli.ts', 'serve', '-c', file], { env: { LOG_LEVEL: 'warn' } })
  try {
    await waitForPort(restPort)
    await waitForPort(grpcPort)
    // Loading and warming models has no event to await from outside: poll readiness like a load balancer.
    for (let tries = 0; ; tries++) {
      const res = await fetch(`http://127.0.0.1:${restPort}/v2/health/ready`)
      if (res.status === 200) break
      if (tries > 300) throw new Error(`specserve not ready:\n${proc.output()}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  } catch (err) {
    await proc.stop()
    throw err
  }
  return { proc, restPort, grpcPort, dir }
}

export const cancerModels = `  cancer-mlp: { kind: onnx, path: ${join(root, 'models/cancer_mlp.onnx')} }
  cancer-logreg: { kind: onnx, path: ${join(root, 'models/cancer_logreg.onnx')} }`

export const cancerEnsemble = `  cancer:
    strategy: deadline-fallback
    models: [cancer-mlp, cancer-logreg]
    budget_ms: { default: 1000, max: 2000 }`
