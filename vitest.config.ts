import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 300_000,
    // Worker pools and real peers are heavy on a 2-core box: run files one at a time
    // so timing-sensitive tests (deadlines) are not starved by a neighbour.
    fileParallelism: false,
    pool: 'forks',
  },
})
