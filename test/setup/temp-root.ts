// Vitest globalSetup: the leak check for temporary directories. The run gets a temp root of its
// own (TMPDIR, which os.tmpdir() in every worker and every child process reads), so what is
// in it at the end is this run's: other runs and other processes on the box write elsewhere,
// and nothing needs a snapshot or a clock. A `specserve-*` entry still there is a helper or test
// that did not remove what it made (some held CA private keys): the run fails naming it. The
// root itself always goes, with whatever peers (pip, MLServer) left there.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export default function useRunTempRoot(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'specserve-vitest-'))
  const previous = process.env.TMPDIR
  process.env.TMPDIR = root
  return () => {
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
    const left = readdirSync(root).filter((name) => name.startsWith('specserve-')).sort()
    try {
      rmSync(root, { recursive: true, force: true, maxRetries: 3 })
    } catch (err) {
      // A peer's child still writing there (ENOTEMPTY) must not fail a run whose tests passed.
      console.warn(`could not remove the run's temp root ${root}: ${(err as Error).message}`)
    }
    if (left.length) {
      throw new Error(`tests left ${left.length} temporary entr${left.length === 1 ? 'y' : 'ies'} behind (make them with tempDir() from test/temp-dirs.ts, or remove them in afterAll/stop()): ${left.join(', ')}`)
    }
  }
}
