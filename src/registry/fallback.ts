// A restart whose chosen version can no longer serve (its file damaged, a gate that changed):
// the previous passing version keeps serving across the restart, as it would across a swap.
// Called by the gateway's first load with the load's issues; it loads again if any model fell back.
import type { ConfigIssue } from '../config/yaml.ts'
import type { Logger } from '../types.ts'
import type { ModelVersions } from './versions.ts'

/**
 * Each repository model named by an issue (`models.<name>`: failed to load, or its gate) has
 * the version it tried rejected with the reason, and the newest earlier version that passed
 * (and the policy allows) chosen instead. True if any model fell back.
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
    rejected(versions.name)
    versions.update(failed, { state: 'rejected', reason: `at start: ${issue.message}` })
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
