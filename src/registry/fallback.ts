// A restart whose chosen version can no longer serve (its file damaged, a gate that changed, a
// box too loaded to pass it in time): the previous passing version keeps serving across the
// restart, as it would across a swap. Called by the gateway's first load with the load's
// issues; it loads again if any model fell back.
import type { ConfigIssue } from '../config/yaml.ts'
import type { Logger } from '../types.ts'
import type { ModelVersions } from './versions.ts'

/**
 * Each repository model named by an issue (`models.<name>`: failed to load, or its gate) has
 * the newest earlier version that passed (and the policy allows) chosen instead of the version
 * it tried. That version is rejected only when its file is gone or no longer matches its sha256
 * (damaged for good); otherwise the cause may be the config or the box, so it stays a candidate
 * the next start tries again (`ready`, or `loading` if it was never judged, with the reason; not
 * judged meanwhile). True if any model fell back.
 */
export function fallBackAtStart(models: ReadonlyMap<string, ModelVersions>, issues: readonly ConfigIssue[], log: Logger, rejected: (model: string) => void): boolean {
  let fellBack = false
  const seen = new Set<ModelVersions>()
  for (const issue of issues) {
    const versions = issue.path.startsWith('models.') ? models.get(issue.path.slice('models.'.length)) : undefined
    const failed = versions?.serving
    if (!versions || failed === undefined || seen.has(versions)) continue
    seen.add(versions) // one fallback per model per load: its other issues are about the same version
    const target = versions.fallbackFrom(failed)
    if (versions.failAtStart(failed, issue.message)) rejected(versions.name)
    if (target === undefined) {
      log.error({ model: versions.name, version: failed, reason: issue.message }, `model version ${failed} failed at start and no earlier version passed: the start fails`)
      continue
    }
    log.error({ model: versions.name, version: failed, reason: issue.message, fallback: target }, `model version ${failed} failed at start; falling back to version ${target}, which passed before`)
    versions.serving = target
    fellBack = true
  }
  return fellBack
}
