// A restart whose chosen version can no longer serve (its file damaged, a gate that changed, a
// box too loaded to pass it in time): the previous passing version keeps serving across the
// restart, as it would across a swap. Called by the gateway's first load with the load's
// issues; it loads again if any model fell back.
import type { ConfigIssue } from '../config/yaml.ts'
import type { Logger } from '../types.ts'
import type { ModelVersions } from './versions.ts'

/** One repository model as a start's fallback sees it: ModelVersions for serve, the preview's for validate. */
export interface FallingBack {
  /** The version the load tried; set to the one fallen back to. */
  serving: number | undefined
  /** The newest earlier version that passed (and the policy allows), if any. */
  fallbackFrom(failed: number): number | undefined
  /** The version failed at this start: how its file is damaged for good (it is rejected), or null (tried again at the next start). */
  failAtStart(version: number, reason: string): string | null
}

/** What became of one model's failed version, for the caller to say. */
export interface FellBack {
  readonly model: string
  readonly failed: number
  readonly reason: string
  /** The version that serves instead; undefined: none passed before, the start fails. */
  readonly target: number | undefined
  /** Why the failed version is rejected for good; null: it is tried again at the next start. */
  readonly damage: string | null
}

/**
 * Each repository model named by an issue (`models.<name>`: failed to load, or its gate) has
 * the newest earlier version that passed (and the policy allows) chosen instead of the version
 * it tried. That version is rejected only when its file is gone or no longer matches its sha256
 * (damaged for good); otherwise the cause may be the config or the box, so it stays a candidate
 * the next start tries again. `said` is told each outcome. True if any model fell back.
 */
export function fallBack(models: ReadonlyMap<string, FallingBack>, issues: readonly ConfigIssue[], said: (outcome: FellBack) => void): boolean {
  let fellBack = false
  const seen = new Set<FallingBack>()
  for (const issue of issues) {
    const model = issue.path.startsWith('models.') ? issue.path.slice('models.'.length) : ''
    const m = models.get(model)
    const failed = m?.serving
    if (!m || failed === undefined || seen.has(m)) continue // a seed has nothing before it
    seen.add(m) // one fallback per model per load: its other issues are about the same version
    const target = m.fallbackFrom(failed)
    said({ model, failed, reason: issue.message, target, damage: m.failAtStart(failed, issue.message) })
    if (target === undefined) continue
    m.serving = target
    fellBack = true
  }
  return fellBack
}

/** serve's start: fallBack, each outcome logged (and a rejection counted). */
export function fallBackAtStart(models: ReadonlyMap<string, ModelVersions>, issues: readonly ConfigIssue[], log: Logger, rejected: (model: string) => void): boolean {
  return fallBack(models, issues, ({ model, failed, reason, target, damage }) => {
    if (damage !== null) rejected(model)
    if (target === undefined) log.error({ model, version: failed, reason }, `model version ${failed} failed at start and no earlier version passed: the start fails`)
    else log.error({ model, version: failed, reason, fallback: target }, `model version ${failed} failed at start; falling back to version ${target}, which passed before`)
  })
}
