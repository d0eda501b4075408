// Runs before every test file (vitest setupFiles): whatever the file made with tempDir() is
// removed after it, also when a test or a hook failed. aroundAll, not afterAll: an afterAll of
// the file that throws (a server that never started) skips the afterAll hooks after it.
import { aroundAll } from 'vitest'
import { removeTempDirs } from '../temp-dirs.ts'

aroundAll(async (runFile) => {
  try {
    await runFile()
  } finally {
    removeTempDirs()
  }
})
