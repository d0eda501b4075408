// A config edit or SIGHUP that arrives while the gateway is still loading its first config
// (a ConfigMap update during a rollout) is not lost: it is logged, queued, and applied once
// the load is done.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { Gateway } from '../../src/gateway.ts'
import { startReloadTriggers } from '../../src/reload/index.ts'
import type { Logger } from '../../src/types.ts'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const yaml = (description: string): string => `
executors: { onnx_workers: 1 }
admin: { watch_config: true }
models:
  a: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }
ensembles:
  e: { description: ${description}, strategy: deadline-fallback, models: [a] }
`

const dir = tempDir('specserve-reload-load-')

/** A logger that records every line and resolves `next(msg)` when a line with that message is logged. */
function recordingLog(): { log: Logger; messages: string[]; next(msg: string): Promise<void> } {
  const messages: string[] = []
  const waiting = new Map<string, () => void>()
  const line = (_obj: unknown, msg: string): void => {
    messages.push(msg)
    waiting.get(msg)?.()
  }
  return {
    log: { info: line, warn: line, error: line },
    messages,
    next: (msg) => new Promise<void>((resolve) => waiting.set(msg, resolve)),
  }
}

describe('reload during the first load', () => {
  it('applies a SIGHUP and a file edit made while the gateway loads, once it is ready', async () => {
    const file = join(dir, 'gateway.yaml')
    writeFileSync(file, yaml('OLD'))
    const gateway = new Gateway(loadConfigFile(file))
    const { log, messages, next } = recordingLog()
    // As in `serve`: the triggers start before the load does.
    const triggers = startReloadTriggers(gateway, log, 20)
    try {
      const queued = next('config reload queued: the first load is still running; it applies once that is done')
      writeFileSync(file, yaml('NEW'))
      process.kill(process.pid, 'SIGHUP')
      await queued
      const reloaded = next('config reloaded')
      await gateway.load()
      await reloaded
      expect(gateway.config.ensembles.get('e')?.description).toBe('NEW')
      expect(gateway.reloads).toEqual({ applied: 1, rejected: 0 })
      // One queued reload, however many triggers arrived during the load.
      expect(messages.filter((m) => m === 'config reloaded')).toHaveLength(1)
    } finally {
      triggers.stop()
      await gateway.close()
    }
  })
})
