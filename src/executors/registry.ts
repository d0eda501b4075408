import type { ExecutorFactory } from './types.ts'

// Executor kinds by the `kind:` YAML key. Remote kinds register themselves the same way.
const kinds = new Map<string, ExecutorFactory<never>>()

export function registerExecutorKind<C>(factory: ExecutorFactory<C>): void {
  if (kinds.has(factory.kind)) throw new Error(`executor kind "${factory.kind}" is already registered`)
  kinds.set(factory.kind, factory as unknown as ExecutorFactory<never>)
}

export function getExecutorKind(kind: string): ExecutorFactory<unknown> | undefined {
  return kinds.get(kind) as ExecutorFactory<unknown> | undefined
}

export function executorKinds(): string[] {
  return [...kinds.keys()]
}
