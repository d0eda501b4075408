import type { StrategyFactory } from './types.ts'

// A named registry, as grpc-js does for load balancers: config names a strategy, the
// registry parses its options once at startup. A third party registers a factory
// before loading config; nothing else changes.
const factories = new Map<string, StrategyFactory<unknown, never>>()

export function registerStrategy<O, R>(factory: StrategyFactory<O, R>): void {
  if (factories.has(factory.name)) throw new Error(`strategy "${factory.name}" is already registered`)
  factories.set(factory.name, factory as unknown as StrategyFactory<unknown, never>)
}

export function getStrategy(name: string): StrategyFactory<unknown, never> | undefined {
  return factories.get(name)
}

export function strategyNames(): string[] {
  return [...factories.keys()]
}
