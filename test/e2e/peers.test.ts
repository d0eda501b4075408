// The peer helpers clean up after themselves: MLServer's model repository (settings.json and
// model-settings.json, written for each start) goes when the peer is stopped, not only the
// process. The e2e tests and the bench start dozens of peers; each used to leave a directory.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startMlserver } from './peers.ts'

describe('startMlserver', () => {
  it('stop() ends MLServer and deletes the model repository written for it', async () => {
    const peer = await startMlserver({ name: 'wine', trained: 'wine_rf', features: 13, classes: 3 })
    try {
      expect(peer.dir && existsSync(join(peer.dir, 'wine', 'model-settings.json'))).toBe(true)
    } finally {
      await peer.stop()
    }
    expect(peer.proc.child.exitCode ?? peer.proc.child.signalCode).not.toBeNull()
    expect(existsSync(peer.dir!)).toBe(false)
  }, 600_000)
})
