// Canary rollout decisions: what the evidence of a canary (src/registry/canary.ts) means
// under `rollout.canary`'s limits.
import type { CanaryEvidence } from './canary.ts'
import type { CanarySettings } from './config.ts'

export type Verdict = { readonly promote: true } | { readonly promote: false; readonly reason: string }

/**
 * Promoted when the error rate is within `max_error_rate` and, for a classifier, agreement
 * with the serving version at least `min_agreement` over at least one compared answer (a
 * classifier's canary with nothing compared has shown no agreement: rolled back). A
 * regression has no agreement: its error rate alone decides.
 */
export function canaryVerdict(evidence: CanaryEvidence, settings: CanarySettings): Verdict {
  if (evidence.error_rate > settings.maxErrorRate) {
    return { promote: false, reason: `error rate ${evidence.error_rate.toFixed(4)} over ${evidence.requests} canary requests is above max_error_rate ${settings.maxErrorRate}` }
  }
  if (evidence.labeled && evidence.compared === 0) {
    return { promote: false, reason: `no canary answer could be compared with the serving version's (${evidence.uncompared} without a label to compare, or the serving version failed or was too slow): agreement is unproven` }
  }
  if (evidence.agreement !== null && evidence.agreement < settings.minAgreement) {
    return { promote: false, reason: `agreement with the serving version ${evidence.agreement.toFixed(4)} over ${evidence.compared} compared answers is below min_agreement ${settings.minAgreement}` }
  }
  return { promote: true }
}

/** The evidence as meta.json keeps it (the numbers). */
export const evidenceRecord = ({ labeled: _labeled, ...numbers }: CanaryEvidence): Record<string, number | null> => numbers
