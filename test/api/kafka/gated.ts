// A test executor kind whose inferences wait until the test opens its gate: a predict held
// "running" for exactly as long as a test needs (a rebalance), with no guessed delay.
import Type from 'typebox'
import { getExecutorKind, registerExecutorKind } from '../../../src/executors/registry.ts'
import type { Executor } from '../../../src/executors/types.ts'
import type { TensorMap } from '../../../src/tensor/index.ts'

interface GatedConfig {
  kind: 'gated'
}

let opened = false
let waiting: (() => void)[] = []

/** Lets every inference waiting at the gate, and every later one, go on. */
export function openGate(): void {
  opened = true
  for (const go of waiting) go()
  waiting = []
}

/** Closes the gate again (for the next test). */
export function closeGate(): void {
  opened = false
}

const answer = (): TensorMap => ({
  label: { datatype: 'INT64', shape: [1], data: BigInt64Array.of(1n) },
  probabilities: { datatype: 'FP32', shape: [1, 2], data: Float32Array.of(0, 1) },
})

function gated(name: string): Executor {
  const meta = {
    name,
    version: '1',
    kind: 'gated',
    inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 2] }],
    outputs: [
      { name: 'label', datatype: 'INT64' as const, shape: [-1] },
      { name: 'probabilities', datatype: 'FP32' as const, shape: [-1, 2] },
    ],
  }
  return {
    name,
    kind: 'gated',
    metadata: () => meta,
    load: () => Promise.resolve(),
    close: () => Promise.resolve(),
    infer(_inputs, ctx): Promise<TensorMap> {
      if (opened) return Promise.resolve(answer())
      return new Promise<TensorMap>((resolve, reject) => {
        const go = (): void => resolve(answer())
        waiting.push(go)
        // Cancelled at shutdown: leave the gate, as a real model stops on abort.
        ctx.signal.addEventListener('abort', () => {
          waiting = waiting.filter((w) => w !== go)
          reject(ctx.signal.reason as Error)
        })
      })
    },
  }
}

if (!getExecutorKind('gated')) {
  registerExecutorKind<GatedConfig, GatedConfig>({
    kind: 'gated',
    schema: Type.Object({ kind: Type.Literal('gated') }),
    create: (name) => gated(name),
  })
}
