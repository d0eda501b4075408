// Real remote peers for the e2e tests and the benchmark: provisioned into the cache by
// scripts/peers/*.sh (reused when present), started as child processes on free ports,
// and stopped by the caller. Each start* resolves once the peer answers a real request.
// Files written for a peer (MLServer's model repository) go with it on stop().
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { freePort, root, startProcess, type Proc } from '../helpers.ts'
import { removeTempDir, tempDir } from '../temp-dirs.ts'

export interface Peer {
  /** REST base URL, e.g. http://127.0.0.1:8080 */
  readonly restUrl: string
  /** gRPC URL, e.g. grpc://127.0.0.1:8081 */
  readonly grpcUrl: string
  readonly proc: Proc
  /** The directory written for this peer, if any (MLServer's model repository). */
  readonly dir?: string
  /** Stops the process, then deletes `dir`. */
  stop(): Promise<void>
}

/** Runs a provisioning script and returns the path it prints (its last stdout line). */
function provision(script: string): string {
  const out = execFileSync(join(root, 'scripts', 'peers', script), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_500_000 })
  return out.trim().split('\n').at(-1)!
}

/** Directory of `<model>/model.joblib` files trained by models/train.py into the cache. */
export const provisionJoblibModels = (): string => provision('models.sh')
export const provisionMlserver = (): string => provision('mlserver.sh')
export const provisionSeldon = (): string => provision('seldon.sh')
export const provisionTfServingStandIn = (): string => provision('tfserving-standin.sh')

/** Polls until `url` answers 200 (a starting peer has no event to await). Fails with the peer's output. */
async function ready(url: string, proc: Proc, init: { method?: 'GET' | 'POST'; body?: string } = {}, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`peer exited (${proc.child.exitCode}) before it was ready:\n${proc.output()}`)
    try {
      const res = await request(url, { method: init.method ?? 'GET', body: init.body, headers: { 'content-type': 'application/json' } })
      await res.body.dump()
      if (res.statusCode === 200) return
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`peer at ${url} not ready after ${timeoutMs} ms:\n${proc.output()}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

const peer = (restPort: number, grpcPort: number, proc: Proc, dir?: string): Peer => ({
  restUrl: `http://127.0.0.1:${restPort}`,
  grpcUrl: `grpc://127.0.0.1:${grpcPort}`,
  proc,
  dir,
  async stop() {
    try {
      await proc.stop()
    } finally {
      if (dir) removeTempDir(dir)
    }
  },
})

export interface ServedModel {
  /** Name the peer serves it under. */
  readonly name: string
  /** A trained model from models/train.py, e.g. `wine_rf`. */
  readonly trained: string
  readonly features: number
  readonly classes: number
}

/**
 * MLServer with the scikit-learn runtime serving `model`, with V2 metadata declared in
 * model-settings.json (input FP32 [-1, F]; outputs predict INT64 [-1], predict_proba FP64 [-1, C]).
 */
export async function startMlserver(model: ServedModel): Promise<Peer> {
  const venv = provisionMlserver()
  const joblibDir = provisionJoblibModels()
  const [restPort, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()]
  const repo = tempDir('specserve-mlserver-')
  mkdirSync(join(repo, model.name))
  writeFileSync(join(repo, 'settings.json'), JSON.stringify({ http_port: restPort, grpc_port: grpcPort, metrics_port: metricsPort, host: '127.0.0.1', debug: false, parallel_workers: 0, load_models_at_startup: true }))
  writeFileSync(
    join(repo, model.name, 'model-settings.json'),
    JSON.stringify({
      name: model.name,
      implementation: 'mlserver_sklearn.SKLearnModel',
      parameters: { uri: join(joblibDir, model.trained, 'model.joblib') },
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, model.features] }],
      outputs: [
        { name: 'predict', datatype: 'INT64', shape: [-1] },
        { name: 'predict_proba', datatype: 'FP64', shape: [-1, model.classes] },
      ],
    }),
  )
  const proc = startProcess(join(venv, 'bin', 'mlserver'), ['start', repo], { env: { MLSERVER_LOGGING_LEVEL: 'WARNING' } })
  const p = peer(restPort, grpcPort, proc, repo)
  try {
    await ready(`${p.restUrl}/v2/models/${model.name}/ready`, proc)
  } catch (err) {
    await p.stop()
    throw err
  }
  return p
}

/** seldon-core's v1 microservice wrapper serving `model` (predict_proba), REST and gRPC. */
export async function startSeldon(model: ServedModel): Promise<Peer> {
  const venv = provisionSeldon()
  const joblibDir = provisionJoblibModels()
  const [restPort, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()]
  const args = ['SklearnModel', '--service-type', 'MODEL', '--http-port', String(restPort), '--grpc-port', String(grpcPort), '--metrics-port', String(metricsPort), '--workers', '1']
  const proc = startProcess(join(venv, 'bin', 'seldon-core-microservice'), args, {
    cwd: join(root, 'scripts', 'peers', 'seldon_model'),
    env: { SELDON_JOBLIB: join(joblibDir, model.trained, 'model.joblib'), PREDICTIVE_UNIT_SERVICE_PORT: String(restPort) },
  })
  const p = peer(restPort, grpcPort, proc)
  const row = new Array<number>(model.features).fill(0)
  try {
    await ready(`${p.restUrl}/api/v1.0/predictions`, proc, { method: 'POST', body: JSON.stringify({ data: { ndarray: [row] } }) })
  } catch (err) {
    await p.stop()
    throw err
  }
  return p
}

/** The TF Serving STAND-IN (scripts/peers/tfserving_standin.py): not TF Serving itself. */
export async function startTfServingStandIn(model: ServedModel): Promise<Peer> {
  const venv = provisionTfServingStandIn()
  const joblibDir = provisionJoblibModels()
  const [restPort, grpcPort] = [await freePort(), await freePort()]
  const args = [join(root, 'scripts', 'peers', 'tfserving_standin.py'), '--name', model.name, '--joblib', join(joblibDir, model.trained, 'model.joblib'), '--features', String(model.features), '--rest-port', String(restPort), '--grpc-port', String(grpcPort)]
  const proc = startProcess(join(venv, 'bin', 'python'), args)
  const p = peer(restPort, grpcPort, proc)
  try {
    await ready(`${p.restUrl}/v1/models/${model.name}`, proc)
  } catch (err) {
    await p.stop()
    throw err
  }
  return p
}
