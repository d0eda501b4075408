// The collectors entry point: importing it registers the built-in strategies. ES modules
// evaluate once per process, so the registration below runs exactly once; a third party
// imports this (or the registry) and calls registerStrategy with its own factory.
import { bestQuality } from './best-quality.ts'
import { deadlineFallback } from './deadline-fallback.ts'
import { majorityVote } from './majority-vote.ts'
import { registerStrategy } from './registry.ts'

registerStrategy(deadlineFallback)
registerStrategy(majorityVote)
registerStrategy(bestQuality)

export { getStrategy, registerStrategy, strategyNames } from './registry.ts'
export { bestQuality, BestQualitySchema, type BestQualityOptions } from './best-quality.ts'
export { deadlineFallback, DeadlineFallbackSchema, type DeadlineFallbackOptions } from './deadline-fallback.ts'
export { majorityVote, MajorityVoteSchema, type MajorityVoteOptions } from './majority-vote.ts'
export type { Collector, EnsembleShape, FailCode, Strategy, StrategyFactory } from './types.ts'
