// Canary rollout decisions: what the evidence of a canary (src/registry/canary.ts) means
// under `rollout.canary`'s limits.
import type { CanaryEvidence } from './canary.ts'
import type { CanarySettings } from './config.ts'

export type Verdict = { readonly promote: true } | { readonly promote: false; readonly reason: string }

/**
 * Promoted when the error rate is within `max_error_rate` and agreement with the serving
 * version at least `min_agreement` (agreement is not judged when nothing could be compared:
 * a regression, or a stable version that never answered).
 */
export function canaryVerdict(evidence: CanaryEvidence, settings: CanarySettings): Verdict {
  if (evidence.error_rate > settings.maxErrorRate) {
    return { promote: false, reason: `error rate ${evidence.error_rate.toFixed(4)} over ${evidence.requests} canary requests is above max_error_rate ${settings.maxErrorRate}` }
  }
  if (evidence.agreement !== null && evidence.agreement < settings.minAgreement) {
    return { promote: false, reason: `agreement with the serving version ${evidence.agreement.toFixed(4)} over ${evidence.compared} compared answers is below min_agreement ${settings.minAgreement}` }
  }
  return { promote: true }
}

/** The evidence as meta.json keeps it. */
export const evidenceRecord = (e: CanaryEvidence): Record<string, number | null> => ({ ...e })
