// Built-in executor kinds. Importing this module registers them once.
import { onnxExecutorKind } from './onnx/executor.ts'
import { registerExecutorKind } from './registry.ts'

registerExecutorKind(onnxExecutorKind)

export { getExecutorKind, executorKinds, registerExecutorKind } from './registry.ts'
export type { Executor, ExecutorEnv, ExecutorFactory, InferContext } from './types.ts'
