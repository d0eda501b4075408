import type { ExecutorKind } from './types.ts'

// Executor kinds by the `kind:` YAML key. Remote kinds register themselves the same way.
const kinds = new Map<string, ExecutorKind<unknown, never>>()

export function registerExecutorKind<S, E>(kind: ExecutorKind<S, E>): void {
  if (kinds.has(kind.kind)) throw new Error(`executor kind "${kind.kind}" is already registered`)
  kinds.set(kind.kind, kind as unknown as ExecutorKind<unknown, never>)
}

export function getExecutorKind(kind: string): ExecutorKind<unknown, never> | undefined {
  return kinds.get(kind)
}

export function executorKinds(): string[] {
  return [...kinds.keys()]
}
