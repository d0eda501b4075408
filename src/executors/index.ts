// Built-in executor kinds. Importing this module registers them once.
import { oipExecutorKind } from './oip.ts'
import { onnxExecutorKind } from './onnx/executor.ts'
import { registerExecutorKind } from './registry.ts'
import { seldonExecutorKind } from './seldon.ts'
import { tfservingExecutorKind } from './tfserving.ts'

registerExecutorKind(onnxExecutorKind)
registerExecutorKind(oipExecutorKind)
registerExecutorKind(tfservingExecutorKind)
registerExecutorKind(seldonExecutorKind)

export { getExecutorKind, executorKinds, registerExecutorKind } from './registry.ts'
export type { Executor, ExecutorEnv, ExecutorKind, InferContext } from './types.ts'
