// Three tiers, run in this order by `npm test`:
// - unit (`*.test.ts`): in-process logic only (no sockets, no child processes, no inference
//   workers), fake timers wherever time matters; files run in parallel. `npm run test:unit`.
// - integration (`*.int.test.ts`): loopback servers, inference workers, subprocesses.
// - e2e (`*.e2e.test.ts`, `test/e2e/`): real peers (Kafka, MLServer, Seldon, the TF Serving
//   stand-in, tritonclient, grpcurl), deploy tooling, the bench smoke run.
// Integration and e2e files run one at a time: deadlines are real there, and a 2-core box
// starves a neighbour's timers.
// Every file: temp dirs made with test/temp-dirs.ts are removed after it (setupFiles); the run
// has a temp root of its own and fails if a `specserve-*` entry is left in it (globalSetup).
import { homedir } from 'node:os'
import { join } from 'node:path'
import { defineConfig } from 'vitest/config'

// onnxruntime's usage telemetry off in every test process (they inherit this process's
// environment), for the tests that open a session without src/executors/onnx/ort-env.ts.
// test/executors/onnx/telemetry.int.test.ts unsets it to check that the gateway sets it.
process.env.ORT_DISABLE_TELEMETRY ??= '1'
// Node's compile cache for every test process, where src/cli.ts keeps its own: each integration
// and e2e file runs in a fresh fork that compiles fastify, grpc-js, OpenTelemetry and the rest
// again (most of vitest's "import" time), and the gateways the tests spawn inherit it.
process.env.NODE_COMPILE_CACHE ??= join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'specserve', 'node-compile-cache')

const setupFiles = ['test/setup/remove-temp-dirs.ts']
const serial = { setupFiles, fileParallelism: false, pool: 'forks', testTimeout: 30_000, hookTimeout: 300_000 } as const

export default defineConfig({
  test: {
    globalSetup: ['test/setup/temp-root.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.int.test.ts', 'test/**/*.e2e.test.ts', 'test/e2e/**'],
          sequence: { groupOrder: 0 },
          testTimeout: 10_000,
          setupFiles,
        },
      },
      { test: { name: 'integration', include: ['test/**/*.int.test.ts'], sequence: { groupOrder: 1 }, ...serial } },
      { test: { name: 'e2e', include: ['test/**/*.e2e.test.ts', 'test/e2e/**/*.test.ts'], sequence: { groupOrder: 2 }, ...serial } },
    ],
  },
})
