// Plays a scripted timeline of outcomes (and the deadline) into a collector and reports
// the decision and the step at which it was taken.
import type { Collector, StrategyFactory } from '../../src/collectors/types.ts'
import type { Decision, Outcome } from '../../src/types.ts'

export type Step = Outcome | 'deadline'

export function run(collector: Collector, steps: readonly Step[]): { decision: Decision | undefined; at: number | undefined } {
  for (let at = 0; at < steps.length; at++) {
    const step = steps[at]!
    const decision = step === 'deadline' ? collector.onDeadline() : collector.onOutcome(step)
    if (decision !== undefined) return { decision, at }
  }
  return { decision: undefined, at: undefined }
}

/** A strategy's options as config load parses them (the raw form is what YAML would hold); a problem throws. */
export function parsed<O, R>(factory: StrategyFactory<O, R>, raw: R): O {
  const ctx = { problem: (field: string, message: string) => { throw new Error(`${field}: ${message}`) }, warn: () => undefined }
  return factory.parse ? factory.parse(raw, ctx) : (raw as unknown as O)
}
