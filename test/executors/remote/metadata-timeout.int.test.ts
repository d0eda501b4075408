// A remote model's metadata call at load against loopback upstreams that never answer it
// (REST and gRPC), with the limit shortened (RemoteSettings.metadataTimeoutMs; the real one is
// 10 s, test/executors/remote/executor.test.ts): the load's error, or the model's metadata_error when YAML declares its tensors, names
// the limit and the upstream, where it said only "The operation was aborted due to timeout".
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../../src/config/load.ts'
import { oipExecutorKind, type OipSpec } from '../../../src/executors/oip.ts'
import type { RemoteExecutor } from '../../../src/executors/remote/executor.ts'
import type { ExecutorEnv } from '../../../src/executors/types.ts'
import { WINE_IO, startFaultServer, startGrpcFaultServer, type FaultServer, type GrpcFaultServer } from './fault-server.ts'

const LIMIT_MS = 300

let http: FaultServer
let rpc: GrpcFaultServer

beforeAll(async () => {
  http = await startFaultServer()
  rpc = await startGrpcFaultServer()
})
afterAll(async () => {
  await http?.close()
  await rpc?.close()
})

/** The model `mute` on `url` (its metadata never answered), `declared` its tensors or not, with the limit shortened. */
function executor(url: string, declared: boolean): RemoteExecutor {
  const yaml = `models:\n  m: { kind: oip, url: "${url}", model: mute${declared ? `, ${WINE_IO}` : ''} }\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n`
  const spec = parseConfig(yaml, '/tmp/remote.yaml').models.get('m')!.spec as OipSpec
  // Remote kinds take nothing from the env.
  return oipExecutorKind.create('m', { ...spec, metadataTimeoutMs: LIMIT_MS }, {} as ExecutorEnv) as RemoteExecutor
}

describe('a remote model whose upstream never answers its metadata call', () => {
  for (const [protocol, url] of [['REST', () => http.url], ['gRPC', () => rpc.url]] as const) {
    it(`${protocol}: fails to load at the limit, naming the limit and the upstream, when YAML declares no tensors`, async () => {
      const ex = executor(url(), false)
      try {
        const started = performance.now()
        const loaded = ex.load()
        await expect(loaded).rejects.toThrow(`cannot read inputs from the upstream (no answer to the metadata call from ${url()} within ${LIMIT_MS} ms (the limit at load)); declare them in YAML`)
        expect(performance.now() - started).toBeGreaterThanOrEqual(LIMIT_MS - 5)
      } finally {
        await ex.close()
      }
    })

    it(`${protocol}: loads on the YAML's tensors with a metadata_error naming the limit and the upstream`, async () => {
      const ex = executor(url(), true)
      try {
        await ex.load()
        expect(ex.describe()).toMatchObject({ metadata_error: `no answer to the metadata call from ${url()} within ${LIMIT_MS} ms (the limit at load)` })
        expect(ex.metadata().inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 13] }])
      } finally {
        await ex.close()
      }
    })
  }
})
