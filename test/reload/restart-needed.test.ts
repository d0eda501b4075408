// restartNeeded tells an operator which edits still wait for a restart. The listeners,
// pools, telemetry and output keep what they started with whatever the reloads in between
// said, so every reload is compared with that, not with the reload before it.
import { afterEach, describe, expect, it } from 'vitest'
import { Gateway } from '../../src/gateway.ts'
import { configFrom } from '../helpers.ts'
import '../starter/scripted.ts'

const models = 'models:\n  m: { kind: scripted }\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n'
const withServer = (server: string): string => `server: { ${server} }\n${models}`

let gateway: Gateway | undefined

afterEach(async () => {
  await gateway?.close()
  gateway = undefined
})

async function started(yaml: string): Promise<Gateway> {
  gateway = new Gateway(configFrom(yaml))
  await gateway.load()
  return gateway
}

describe('restartNeeded: compared with what the gateway started with', () => {
  it('keeps listing a server change not applied yet, and drops it once the file is back to the running value', async () => {
    const g = await started(withServer('body_limit_bytes: 4194304'))
    expect((await g.reload(configFrom(withServer('body_limit_bytes: 1000')))).restartNeeded).toEqual(['server'])
    // Only max_in_flight (applied at once) changes now, but the 1000-byte limit still waits.
    expect((await g.reload(configFrom(withServer('body_limit_bytes: 1000, max_in_flight: 7')))).restartNeeded).toEqual(['server'])
    // Back to the limit the listener runs with: nothing waits any more.
    expect((await g.reload(configFrom(withServer('body_limit_bytes: 4194304, max_in_flight: 7')))).restartNeeded).toEqual([])
  })

  it('keeps listing executors and telemetry through later reloads that touch neither', async () => {
    const g = await started(`executors: { onnx_workers: 1 }\n${models}`)
    expect((await g.reload(configFrom(`executors: { onnx_workers: 3 }\n${models}`))).restartNeeded).toEqual(['executors'])
    expect((await g.reload(configFrom(`executors: { onnx_workers: 3 }\ntelemetry: { service_name: other }\n${models}`))).restartNeeded).toEqual(['executors', 'telemetry'])
    expect((await g.reload(configFrom(`executors: { onnx_workers: 1 }\n${models}`))).restartNeeded).toEqual([])
  })

  it('keeps listing auth turned on while the gateway started open, whatever its keys become', async () => {
    const g = await started(models)
    const guarded = (id: string): string => `${models}auth:\n  api_keys:\n    - { id: ${id}, sha256: "${'a'.repeat(64)}", scopes: ["read"] }\n`
    expect((await g.reload(configFrom(guarded('first')))).restartNeeded).toEqual(['auth'])
    expect((await g.reload(configFrom(guarded('second')))).restartNeeded).toEqual(['auth'])
    expect((await g.reload(configFrom(models))).restartNeeded).toEqual([])
  })
})
