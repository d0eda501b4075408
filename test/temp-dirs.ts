// Temporary directories for tests and the helpers they share (PKIs, configs, model repositories).
// Each is made under os.tmpdir() and removed after the test file that made it, passed or failed:
// test/setup/remove-temp-dirs.ts wraps every file. Code run outside vitest (the bench
// imports makePki) removes what it made itself.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const made = new Set<string>()

/** A new directory `<tmpdir>/<prefix>XXXXXX`, removed after the current test file. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.add(dir)
  return dir
}

/** Removes one directory now (a helper's stop()); harmless if it is already gone. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  made.delete(dir)
}

/** Removes every directory tempDir made in this module instance (one per test file). */
export function removeTempDirs(): void {
  for (const dir of made) removeTempDir(dir)
}
