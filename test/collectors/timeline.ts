// Plays a scripted timeline of outcomes (and the deadline) into a collector and reports
// the decision and the step at which it was taken.
import type { Collector } from '../../src/collectors/types.ts'
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
